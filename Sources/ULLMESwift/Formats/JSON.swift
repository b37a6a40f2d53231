import FoundationEssentials

/// A parsed JSON document of unknown shape (config.json, tokenizer.json, safetensors headers).
/// Parsing is FoundationEssentials' JSONDecoder, which is depth-limited and never traps on bad input.
public enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// Parses bytes; errors become `ULLMEError.format` naming `what`.
    public static func parse(_ bytes: some Collection<UInt8>, what: String) throws -> JSONValue {
        do { return try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) }
        catch { throw ULLMEError.format("\(what): invalid JSON (\(error))") }
    }

    /// Reads and parses a JSON file (errors name the file).
    public static func read(file path: String) throws -> JSONValue {
        let f = try MappedFile(path: path)
        return try withExtendedLifetime(f) { try parse(f.bytes, what: path) }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var double: Double? { if case .number(let n) = self { return n }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var object: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { self == .null }
    /// An integer value, only if the number is integral and fits in Int.
    public var int: Int? {
        guard case .number(let n) = self, n.isFinite, n == n.rounded(), abs(n) < 9.0e15 else { return nil }
        return Int(n)
    }
}

/// A JSON string literal (quotes included), as JSONEncoder writes it: the one string escaper of the
/// library and the CLI (hand-built JSON documents put every string through it).
public func jsonString(_ s: String) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    // Encoding a String cannot fail; the fallback only satisfies the type checker.
    return (try? encoder.encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
}

/// `jsonString` of bytes read as UTF-8 (invalid sequences become U+FFFD).
public func jsonString(_ bytes: [UInt8]) -> String { jsonString(String(decoding: bytes, as: UTF8.self)) }
