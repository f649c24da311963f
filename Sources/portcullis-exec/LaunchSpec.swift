import Foundation

/// What the node asks the launcher to run, as one JSON line on the control socket (fd 3).
struct LaunchSpec: Decodable {
    /// The OS account to run as.
    var login: String
    /// `nil`: the login shell, interactive.
    var command: String?
    /// Already allow-listed by the node; filtered again here.
    var environment: [String: String]
    /// For PAM and the environment of the session (PORTCULLIS_USER).
    var portcullisUser: String

    enum CodingKeys: String, CodingKey {
        case login, command, environment
        case portcullisUser = "portcullis_user"
    }

    /// Variables a client may set (OpenSSH's AcceptEnv defaults on Debian, plus TERM/COLORTERM/TZ).
    static func isAllowed(_ name: String) -> Bool {
        ["TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ"].contains(name)
            || (name.hasPrefix("LC_") && name.dropFirst(3).allSatisfy { $0.isUppercase || $0 == "_" } && name.count > 3)
    }
}

/// Reports to the node, one JSON object per line on the control socket.
enum Report {
    static func send(_ fields: [String: Any]) {
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        data.append(0x0a)
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(3, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}

/// Lines from the control socket.
struct ControlReader {
    private var buffer: [UInt8] = []
    static let limit = 64 * 1024

    /// The next line, or nil at end of input or past the limit.
    mutating func line() -> [UInt8]? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0a) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            guard buffer.count < Self.limit else { return nil }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(3, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }
}
