import Foundation

/// The host's accounts, read from any thread (getpwnam's result is a static buffer shared by
/// every thread; getpwnam_r's is the caller's).
enum HostAccounts {
    static func uid(of login: String) -> uid_t? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwnam_r(login, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.pw_uid
    }
}
