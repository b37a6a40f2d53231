import CYAML

// A small YAML document tree read with libyaml's event API: scalars, sequences and mappings, each with
// its 1-based line and column for error messages. Anchors and aliases are resolved (an alias is a copy
// of the anchored node). Scalars stay text; the typed accessors below interpret plain (unquoted)
// scalars the way PyYAML's safe_load (YAML 1.1) does for the values a config uses — the reference reads
// its configs with PyYAML — except that numbers in exponent form without a dot (1e-4) are accepted as
// numbers, where PyYAML would make them strings. Quoted scalars are always strings.

public indirect enum YAMLValue: Sendable, Equatable {
    /// A scalar's text; `plain` is false for quoted and block scalars.
    case scalar(String, plain: Bool)
    case sequence([YAMLNode])
    /// Key/value pairs in document order (keys are scalars; duplicates are a parse error).
    case mapping([YAMLEntry])
}

public struct YAMLNode: Sendable, Equatable {
    public var value: YAMLValue
    /// 1-based position of the node's start in the document.
    public var line: Int
    public var column: Int

    public init(_ value: YAMLValue, line: Int = 0, column: Int = 0) {
        self.value = value; self.line = line; self.column = column
    }
}

public struct YAMLEntry: Sendable, Equatable {
    public var key: String
    /// 1-based line of the key.
    public var line: Int
    public var value: YAMLNode
}

extension YAMLNode {
    /// Parses one YAML document. An empty document (or only comments) gives nil. Syntax errors and a
    /// second document throw `.format("file:line:column: problem")`.
    public static func parse(_ text: String, file: String = "<yaml>") throws -> YAMLNode? {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0A] }
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) != 0 else { throw ULLMEError.outOfMemory("libyaml parser") }
        defer { yaml_parser_delete(parser) }
        return try bytes.withUnsafeBufferPointer { buf -> YAMLNode? in
            yaml_parser_set_input_string(parser, buf.baseAddress, buf.count)
            var builder = Builder(file: file)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(parser, &event) != 0 else {
                    let p = parser.pointee
                    let problem = p.problem.map { String(cString: $0) } ?? "syntax error"
                    let context = p.context.map { " " + String(cString: $0) } ?? ""
                    throw ULLMEError.format("\(file):\(p.problem_mark.line + 1):\(p.problem_mark.column + 1): "
                                            + "invalid YAML: \(problem)\(context)")
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { break }
                try builder.handle(&event)
            }
            return builder.root
        }
    }

    private struct Builder {
        enum Frame {
            case sequence([YAMLNode], line: Int, column: Int, anchor: String?)
            case mapping([YAMLEntry], key: (String, Int)?, line: Int, column: Int, anchor: String?)
        }
        let file: String
        var stack: [Frame] = []
        var anchors: [String: YAMLNode] = [:]
        var root: YAMLNode? = nil
        var documents = 0

        init(file: String) { self.file = file }

        static func text(_ p: UnsafeMutablePointer<yaml_char_t>?, _ n: Int) -> String {
            guard let p else { return "" }
            return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
        }
        static func text(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            guard let p else { return nil }
            return String(cString: UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
        }

        mutating func handle(_ e: inout yaml_event_t) throws {
            let line = Int(e.start_mark.line) + 1, column = Int(e.start_mark.column) + 1
            switch e.type {
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 { throw ULLMEError.format("\(file):\(line):\(column): more than one YAML document") }
            case YAML_SCALAR_EVENT:
                let s = e.data.scalar
                let node = YAMLNode(.scalar(Self.text(s.value, Int(s.length)), plain: s.style == YAML_PLAIN_SCALAR_STYLE),
                                    line: line, column: column)
                try attach(node, anchor: Self.text(s.anchor))
            case YAML_ALIAS_EVENT:
                let name = Self.text(e.data.alias.anchor) ?? ""
                guard let node = anchors[name] else {
                    throw ULLMEError.format("\(file):\(line):\(column): unknown alias *\(name)")
                }
                try attach(node, anchor: nil)
            case YAML_SEQUENCE_START_EVENT:
                stack.append(.sequence([], line: line, column: column, anchor: Self.text(e.data.sequence_start.anchor)))
            case YAML_MAPPING_START_EVENT:
                stack.append(.mapping([], key: nil, line: line, column: column, anchor: Self.text(e.data.mapping_start.anchor)))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                switch stack.removeLast() {
                case .sequence(let items, let l, let c, let anchor):
                    try attach(YAMLNode(.sequence(items), line: l, column: c), anchor: anchor)
                case .mapping(let entries, _, let l, let c, let anchor):
                    try attach(YAMLNode(.mapping(entries), line: l, column: c), anchor: anchor)
                }
            default:
                break  // stream start, document end
            }
        }

        mutating func attach(_ node: YAMLNode, anchor: String?) throws {
            if let anchor { anchors[anchor] = node }
            guard let top = stack.popLast() else { root = node; return }
            switch top {
            case .sequence(var items, let l, let c, let a):
                items.append(node)
                stack.append(.sequence(items, line: l, column: c, anchor: a))
            case .mapping(var entries, let key, let l, let c, let a):
                if let (k, kl) = key {
                    entries.append(YAMLEntry(key: k, line: kl, value: node))
                    stack.append(.mapping(entries, key: nil, line: l, column: c, anchor: a))
                } else {
                    guard case .scalar(let k, _) = node.value else {
                        throw ULLMEError.format("\(file):\(node.line):\(node.column): a mapping key must be a scalar")
                    }
                    if let prev = entries.first(where: { $0.key == k }) {
                        throw ULLMEError.format("\(file):\(node.line):\(node.column): duplicate key \"\(k)\" (first on line \(prev.line))")
                    }
                    stack.append(.mapping(entries, key: (k, node.line), line: l, column: c, anchor: a))
                }
            }
        }
    }
}

// MARK: typed access

extension YAMLNode {
    /// What this node is, for error messages ("a mapping", "the string \"abc\"", ...).
    public var kindDescription: String {
        switch value {
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .scalar(let s, let plain):
            if plain && isNull { return "null" }
            return plain ? "\"\(s)\"" : "the quoted string \"\(s)\""
        }
    }

    public var mapping: [YAMLEntry]? { if case .mapping(let m) = value { return m }; return nil }
    public var sequence: [YAMLNode]? { if case .sequence(let s) = value { return s }; return nil }
    /// The text of any scalar (plain or quoted).
    public var scalarText: String? { if case .scalar(let s, _) = value { return s }; return nil }
    private var plainText: String? { if case .scalar(let s, true) = value { return s }; return nil }

    /// A plain `~`, `null`, `Null`, `NULL` or empty scalar.
    public var isNull: Bool {
        guard let s = plainText else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s)
    }

    /// YAML 1.1 booleans (PyYAML): true/false, yes/no, on/off in lower, Capital or UPPER case.
    public var bool: Bool? {
        guard let s = plainText else { return nil }
        switch s {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: return nil
        }
    }

    /// A plain decimal integer (optional sign, `_` separators allowed as in YAML 1.1).
    public var int: Int? {
        guard let s = plainText?.replacingAll("_", with: ""), !s.isEmpty else { return nil }
        let digits = s.first == "-" || s.first == "+" ? s.dropFirst() : Substring(s)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s.first == "+" ? String(digits) : s)
    }

    /// A plain number: an integer, a decimal or exponent form, or .inf / -.inf / .nan.
    public var double: Double? {
        guard let raw = plainText, !raw.isEmpty else { return nil }
        switch raw {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: break
        }
        let s = raw.replacingAll("_", with: "")
        guard s.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }),
              s.contains(where: { $0.isNumber }) else { return nil }
        return Double(s)
    }
}

extension String {
    fileprivate func replacingAll(_ a: Character, with b: String) -> String {
        var out = ""
        out.reserveCapacity(count)
        for ch in self { if ch == a { out += b } else { out.append(ch) } }
        return out
    }
}
