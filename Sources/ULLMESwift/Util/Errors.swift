/// Every failure inside the engine is one of these; the C API maps each case to a status code.
public enum ULLMEError: Error, CustomStringConvertible, Equatable {
    case argument(String)      // ULLME_E_ARG: the caller passed something invalid
    case io(String)            // ULLME_E_IO: a file could not be opened/read/written
    case format(String)        // ULLME_E_FORMAT: a file is malformed or hostile
    case unsupported(String)   // ULLME_E_UNSUPPORTED: valid but not implemented (architecture, tensor type)
    case outOfMemory(String)   // ULLME_E_OOM
    case cancelled             // ULLME_E_CANCELLED: a progress callback asked to stop
    case state(String)         // ULLME_E_STATE: wrong call order / object state

    public var description: String {
        switch self {
        case .argument(let m): return "invalid argument: \(m)"
        case .io(let m): return "I/O error: \(m)"
        case .format(let m): return "bad format: \(m)"
        case .unsupported(let m): return "unsupported: \(m)"
        case .outOfMemory(let m): return "out of memory: \(m)"
        case .cancelled: return "cancelled by the progress callback"
        case .state(let m): return "invalid state: \(m)"
        }
    }
}
