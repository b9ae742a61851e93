import Foundation
import KlingCore

#if canImport(Glibc)
import Glibc
#endif

/// Where commands write: results to stdout, problems to stderr.
enum Console {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Pretty JSON to stdout.
    static func json(_ value: JSONValue) {
        FileHandle.standardOutput.write(value.prettyData() + Data("\n".utf8))
    }

    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }
    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
}
