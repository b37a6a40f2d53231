import Glibc

/// The choice named by environment variable `name` (a case's raw value), else `fallback`. A value that names
/// no case is said on stderr, so a typo is not silently taken for the default.
func environmentChoice<T: RawRepresentable>(_ name: String, default fallback: T, expected: String) -> T where T.RawValue == String {
    guard let v = getenv(name) else { return fallback }
    let value = String(cString: v)
    guard let choice = T(rawValue: value) else {
        if !value.isEmpty { fputs("ullme: \(name)=\(value) is not \(expected); using \(fallback.rawValue)\n", stderr) }
        return fallback
    }
    return choice
}
