import FIPSCrypto
import Foundation

/// Finds and reads the key-encryption key (KEK) that wraps every data key.
///
/// Sources, in order: the systemd credential `portcullis-kek` (`$CREDENTIALS_DIRECTORY`, from
/// `LoadCredentialEncrypted=`, as the service gets it), the encrypted credential in systemd's
/// store (`/etc/credstore.encrypted/portcullis-kek`, which only root can decrypt: how `pcctl`
/// and `portcullis selftest` run as root reach it), then the configured key file. A key file must be a regular file
/// (not a link), owned by the user the daemon runs as, and readable by that user only (0600 or
/// 0400); anything else is refused with the reason, because a KEK others can read protects nothing.
/// The content is 32 bytes: raw, 64 hex digits, or base64, optionally followed by a newline.
public struct KeyEncryptionKeySource: Sendable, Equatable, CustomStringConvertible {
    public static let credentialName = "portcullis-kek"
    public static let keySize = 32
    /// Where the package puts the KEK as a `systemd-creds encrypt` credential (bound to the host's
    /// TPM2 or its credential secret), and where `LoadCredentialEncrypted=portcullis-kek` finds it.
    public static let encryptedCredentialPath = "/etc/credstore.encrypted/portcullis-kek"

    public enum Location: Sendable, Equatable {
        case credential(path: String)
        case file(path: String)
        /// Decrypted with `systemd-creds decrypt` (root only).
        case encryptedCredential(path: String)
    }

    public let location: Location

    public init(location: Location) { self.location = location }

    public var description: String {
        switch location {
        case .credential(let path): return "systemd credential \(path)"
        case .file(let path): return "key file \(path)"
        case .encryptedCredential(let path): return "encrypted systemd credential \(path)"
        }
    }

    /// Picks the source: the credential when `credentialsDirectory` holds one, else `keyFile`.
    public static func locate(credentialsDirectory: String?, keyFile: String?,
                              encryptedCredential: String = encryptedCredentialPath) throws -> KeyEncryptionKeySource {
        if let directory = credentialsDirectory, !directory.isEmpty {
            let path = (directory as NSString).appendingPathComponent(credentialName)
            if FileManager.default.fileExists(atPath: path) {
                return KeyEncryptionKeySource(location: .credential(path: path))
            }
        }
        // The same order as the service's (its drop-in turns this credential into the one above),
        // so a root pcctl and the daemon never pick two different keys.
        if FileManager.default.fileExists(atPath: encryptedCredential) {
            return KeyEncryptionKeySource(location: .encryptedCredential(path: encryptedCredential))
        }
        guard let keyFile, !keyFile.isEmpty else {
            throw StorageError.keyEncryptionKeyUnavailable(
                "no systemd credential '\(credentialName)' (CREDENTIALS_DIRECTORY is \(credentialsDirectory ?? "unset")), "
                    + "no \(encryptedCredential) and no keyring.kek_file in the configuration. "
                    + "Create one with 'portcullis configure --kek-file PATH' or 'portcullis configure --kek-credential'.")
        }
        return KeyEncryptionKeySource(location: .file(path: keyFile))
    }

    /// Reads and checks the key.
    public func load() throws -> SymmetricKey {
        let path: String
        switch location {
        case .credential(let p): path = p
        case .file(let p): path = p
        case .encryptedCredential(let p): return try decrypt(p)
        }
        // One open that refuses a link, then every check on that descriptor: a path checked and
        // then opened again could be swapped for a link in between.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            let reason = errno == ELOOP ? "is a symbolic link (links are refused)" : String(cString: strerror(errno))
            throw StorageError.keyEncryptionKeyUnavailable("\(self): \(reason)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw StorageError.keyEncryptionKeyUnavailable("\(self): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw StorageError.keyEncryptionKeyUnavailable("\(self) is not a regular file (links and devices are refused)")
        }
        let mode = info.st_mode & 0o7777
        switch location {
        case .file:
            guard info.st_uid == geteuid() else {
                throw StorageError.keyEncryptionKeyUnavailable(
                    "\(self) is owned by uid \(info.st_uid), not by uid \(geteuid()) that Portcullis runs as; chown it")
            }
            guard mode == 0o600 || mode == 0o400 else {
                throw StorageError.keyEncryptionKeyUnavailable(
                    "\(self) has mode \(String(mode, radix: 8)); it must be 600 (or 400) so only its owner can read it: chmod 600 \(path)")
            }
        case .credential, .encryptedCredential:  // (an encrypted one is checked by `decrypt`)
            // systemd makes credentials readable by the service only; still refuse one others can read.
            guard mode & 0o077 == 0 else {
                throw StorageError.keyEncryptionKeyUnavailable("\(self) has mode \(String(mode, radix: 8)); group and others must have no access")
            }
        }
        guard info.st_size <= 4096, var content = Self.readAll(fd, limit: 4096) else {
            throw StorageError.keyEncryptionKeyUnavailable("\(self) cannot be read, or is larger than a key")
        }
        defer { wipe(&content) }
        guard var key = Self.decode(content) else {
            throw StorageError.keyEncryptionKeyUnavailable(
                "\(self) does not hold a \(Self.keySize)-byte key (raw, 64 hex digits, or base64)")
        }
        defer { wipe(&key) }
        return SymmetricKey(bytes: key)
    }

    /// `systemd-creds decrypt` of the credential (it checks the name and the host binding), after
    /// checking the file is root's and writable by root only: whoever could write it would choose
    /// the key new data keys are sealed with.
    private func decrypt(_ path: String) throws -> SymmetricKey {
        guard geteuid() == 0 else {
            throw StorageError.keyEncryptionKeyUnavailable(
                "\(self) can be decrypted by root only. As a service, it needs its drop-in "
                    + "(LoadCredentialEncrypted=portcullis-kek: dpkg-reconfigure portcullis writes it); otherwise run this as root "
                    + "(it then acts as the data directory's owner)")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            throw StorageError.keyEncryptionKeyUnavailable("\(self): \(errno == ELOOP ? "is a symbolic link (links are refused)" : String(cString: strerror(errno)))")
        }
        var info = stat()
        let checked = fstat(fd, &info) == 0
        let sealed = checked ? Self.readAll(fd, limit: 16384) : nil
        close(fd)
        guard checked, info.st_mode & S_IFMT == S_IFREG, info.st_uid == 0, info.st_mode & 0o022 == 0, let sealed else {
            throw StorageError.keyEncryptionKeyUnavailable(
                "\(self) must be a regular file owned by root that only root can write (at most 16 KiB)")
        }
        // The content read and checked above is what is decrypted: the path is not opened again.
        var content = try SystemdCreds.run(["decrypt", "--name=\(Self.credentialName)", "-", "-"], input: sealed)
        defer { wipe(&content) }
        guard var key = Self.decode(content) else {
            throw StorageError.keyEncryptionKeyUnavailable("\(self) does not hold a \(Self.keySize)-byte key (raw, 64 hex digits, or base64)")
        }
        defer { wipe(&key) }
        return SymmetricKey(bytes: key)
    }

    /// Makes a new random KEK and stores it only as an encrypted credential at `path` (root's,
    /// 0600, bound to this host), refusing to replace an existing one; nothing is left on failure.
    public static func generateCredential(at path: String, using crypto: CryptoContext) throws {
        var key = try crypto.randomBytes(keySize)
        defer { wipe(&key) }
        var text = Array(Hex.encode(key).utf8) + [0x0A]
        defer { wipe(&text) }
        let sealed = try SystemdCreds.run(["encrypt", "--with-key=host", "--name=\(credentialName)", "-", "-"], input: text, limit: 16384)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw StorageError.keyEncryptionKeyUnavailable(
                errno == EEXIST ? "\(path) exists; not replacing a key-encryption key" : "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = sealed.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == sealed.count, fchmod(fd, 0o600) == 0, fsync(fd) == 0 else {
            unlink(path)
            throw StorageError.keyEncryptionKeyUnavailable("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// At most `limit` bytes from `fd`; nil on an error or past the limit.
    static func readAll(_ fd: Int32, limit: Int) -> [UInt8]? {
        var content = [UInt8](repeating: 0, count: limit + 1)
        var count = 0
        while count <= limit {
            let read = content.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, limit + 1 - count) }
            if read < 0 && errno == EINTR { continue }
            guard read >= 0 else { wipe(&content); return nil }
            if read == 0 { break }
            count += read
        }
        guard count <= limit else { wipe(&content); return nil }
        let result = Array(content[..<count])
        wipe(&content)
        return result
    }

    static func decode(_ content: [UInt8]) -> [UInt8]? {
        if content.count == keySize { return content }
        var text = content
        defer { wipe(&text) }
        while let last = text.last, last == 0x0a || last == 0x0d { text.removeLast() }
        if text.count == 2 * keySize, text.allSatisfy({ isHexDigit($0) }) {
            return stride(from: 0, to: text.count, by: 2).map { UInt8(hexValue(text[$0]) << 4 | hexValue(text[$0 + 1])) }
        }
        guard var decoded = Data(base64Encoded: Data(text)) else { return nil }
        defer { decoded.resetBytes(in: 0..<decoded.count) }
        return decoded.count == keySize ? [UInt8](decoded) : nil
    }

    private static func isHexDigit(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x61...0x66).contains(c) || (0x41...0x46).contains(c) }
    private static func hexValue(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10 }

    /// Writes a new random KEK to `path` (hex, mode 0600), refusing to replace an existing file.
    public static func generate(at path: String, using crypto: CryptoContext) throws {
        var key = try crypto.randomBytes(keySize)
        defer { wipe(&key) }
        var text = Array((Hex.encode(key) + "\n").utf8)
        defer { wipe(&text) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw StorageError.keyEncryptionKeyUnavailable("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == text.count, fsync(fd) == 0 else {
            unlink(path)
            throw StorageError.keyEncryptionKeyUnavailable("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
