/// Text from outside (file names, prompts, fal's errors) made safe for a one-line log record.
///
/// A newline in a file name would otherwise start a forged log line, and an escape sequence could repaint the
/// operator's terminal. Control characters become visible escapes (`\n`, `\t`, `\u{1b}`); the backslash is
/// doubled so an escape cannot be faked either. Everything else, non-ASCII letters included, is kept.
public enum LogSafe {
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case "\\": escaped += "\\\\"
            case _ where needsEscape(scalar): escaped += "\\u{\(String(scalar.value, radix: 16))}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// C0 and C1 controls, DEL, the backslash, and the line and paragraph separators some terminals honour.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || value == 0x7F || (0x80...0x9F).contains(value) || value == 0x5C || value == 0x2028 || value == 0x2029
    }
}
