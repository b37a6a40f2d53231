// How a params struct grows without breaking callers built against an older header (docs/abi.md): fields
// are only appended; each released layout is named by the first field added after it; the library accepts
// the struct_size of every released layout, reads only that layout's fields, and gives the fields it lacks
// their defaults.

/// The sizes of a params struct's released layouts, oldest first, each given by the key path of the first
/// field added after it (the current layout is implied).
struct ParamsLayouts<T> {
    let name: String
    let olderEndingBefore: [PartialKeyPath<T>]

    var currentSize: UInt32 { UInt32(MemoryLayout<T>.size) }

    /// (struct_size that layout's callers pass, bytes of its fields): its fields end where the next field
    /// starts; its size adds the tail padding to the struct's alignment.
    var older: [(size: UInt32, fieldBytes: Int)] {
        olderEndingBefore.map { path in
            let end = MemoryLayout<T>.offset(of: path)!, align = MemoryLayout<T>.alignment
            return (UInt32((end + align - 1) / align * align), end)
        }
    }

    /// The caller's struct as the current layout: its released fields copied, the rest `defaults`.
    func read(_ p: UnsafeRawPointer, defaults: T, setSize: (inout T, UInt32) -> Void) throws -> T {
        let size = p.load(as: UInt32.self)
        let fieldBytes: Int
        if size == currentSize { fieldBytes = Int(size) }
        else if let o = older.first(where: { $0.size == size }) { fieldBytes = o.fieldBytes }
        else {
            throw argError("\(name).struct_size is \(size), expected \(currentSize): start from \(name.dropLast("_params".count))_default_params()")
        }
        var out = defaults
        withUnsafeMutableBytes(of: &out) { $0.copyMemory(from: UnsafeRawBufferPointer(start: p, count: fieldBytes)) }
        setSize(&out, currentSize)
        return out
    }
}
