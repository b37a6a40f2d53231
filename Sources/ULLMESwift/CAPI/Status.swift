import CULLME
import Glibc

/// Runs `body`, turning every thrown error into a status code plus a thread-local message.
/// Every exported function funnels through here so nothing crosses the ABI as a Swift error.
@inline(__always)
func capiCall(_ function: String, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return ULLME_OK_CODE
    } catch let e as ULLMEError {
        cullme_set_last_error("\(function): \(e.description)")
        switch e {
        case .argument: return Int32(ULLME_E_ARG)
        case .io: return Int32(ULLME_E_IO)
        case .format: return Int32(ULLME_E_FORMAT)
        case .unsupported: return Int32(ULLME_E_UNSUPPORTED)
        case .outOfMemory: return Int32(ULLME_E_OOM)
        case .cancelled: return Int32(ULLME_E_CANCELLED)
        case .state: return Int32(ULLME_E_STATE)
        }
    } catch {
        cullme_set_last_error("\(function): internal error: \(error)")
        return Int32(ULLME_E_INTERNAL)
    }
}

let ULLME_OK_CODE = Int32(ULLME_OK)

func argError(_ message: String) -> ULLMEError { .argument(message) }

/// Bytes of a (pointer, length) pair where length may be ULLME_NUL_TERMINATED.
func bytes(_ p: UnsafePointer<CChar>?, _ len: Int, what: String) throws -> [UInt8] {
    guard let p else {
        if len == 0 { return [] }
        throw argError("\(what) is NULL")
    }
    let n = len == Int(bitPattern: UInt(ULLME_NUL_TERMINATED_VALUE)) ? strlen(p) : len
    // A size_t above Int.max arrives negative: no buffer is that large (and a negative count traps).
    guard n >= 0 else { throw argError("\(what) length \(UInt(bitPattern: len)) is larger than any buffer") }
    return p.withMemoryRebound(to: UInt8.self, capacity: n) { Array(UnsafeBufferPointer(start: $0, count: n)) }
}

let ULLME_NUL_TERMINATED_VALUE = UInt.max

@_cdecl("ullme_version")
public func capi_version() -> UnsafePointer<CChar> { libraryVersionCString }
/// The library version (ullme_version(), `ullme --version`): the one place it is written. The Makefile (the
/// .pc file), the Python package's build (bindings/python/setup.py) and `ullme.__version__` read it from here.
public let libraryVersion = "0.1.0"
let libraryVersionCString: UnsafePointer<CChar> = {
    let s = strdup(libraryVersion)!
    return UnsafePointer(s)
}()

@_cdecl("ullme_abi_version")
public func capi_abi_version() -> Int32 { 1 }

private let statusNames: [UnsafePointer<CChar>] = ([String]([
    "ULLME_OK", "ULLME_E_ARG", "ULLME_E_IO", "ULLME_E_FORMAT", "ULLME_E_UNSUPPORTED", "ULLME_E_OOM",
    "ULLME_E_CANCELLED", "ULLME_E_STATE", "ULLME_E_INTERNAL", "ULLME_E_UNKNOWN",
])).map { UnsafePointer(strdup($0)!) }

@_cdecl("ullme_status_name")
public func capi_status_name(_ status: Int32) -> UnsafePointer<CChar> {
    statusNames[(0...8).contains(status) ? Int(status) : 9]
}

@_cdecl("ullme_pooling_from_name")
public func capi_pooling_from_name(_ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<ullme_pooling>?) -> Int32 {
    capiCall("ullme_pooling_from_name") {
        guard let name, let out else { throw argError("name and out must not be NULL") }
        let n = String(cString: name)
        out.pointee = n == "auto" ? ULLME_POOLING_AUTO : try Pooling(name: n).c
    }
}

@_cdecl("ullme_attention_from_name")
public func capi_attention_from_name(_ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<ullme_attention>?) -> Int32 {
    capiCall("ullme_attention_from_name") {
        guard let name, let out else { throw argError("name and out must not be NULL") }
        let n = String(cString: name)
        out.pointee = n == "auto" ? ULLME_ATTENTION_AUTO : try AttentionMode(name: n).c
    }
}
