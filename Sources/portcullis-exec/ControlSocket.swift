import Foundation
import LaunchProtocol

/// Reports to the node, one line each on the control socket (fd 3).
enum Report {
    /// Whether the whole line was written (false: the node is gone).
    @discardableResult
    static func send(_ report: LaunchReport) -> Bool {
        let bytes = report.line
        return bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(3, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return false }
                offset += written
            }
            return true
        }
    }
}

/// Lines from the control socket.
struct ControlReader {
    private var buffer: [UInt8] = []
    static let limit = LaunchSpec.lineLimit

    /// The next line, blocking; nil at end of input or past the limit.
    mutating func line() -> [UInt8]? {
        while true {
            if let line = bufferedLine() { return line }
            guard fill() else { return nil }
        }
    }

    /// The next whole line already read, if there is one.
    mutating func bufferedLine() -> [UInt8]? {
        guard let newline = buffer.firstIndex(of: 0x0a) else { return nil }
        let line = Array(buffer[..<newline])
        buffer.removeSubrange(...newline)
        return line
    }

    /// One read (blocking while nothing is there); false at end of input, on an error or past
    /// the limit: the node is gone.
    mutating func fill() -> Bool {
        guard buffer.count < Self.limit else { return false }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(3, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            buffer += chunk[..<count]
            return true
        }
    }
}
