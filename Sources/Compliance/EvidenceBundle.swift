import Audit
import FIPSCrypto
import Foundation

/// What an auditor receives: a directory holding a report in every form, the exported events and
/// the roles it was computed from (so it can be reproduced offline), the audit log's own
/// verification, and `manifest.json`, which lists every file with its SHA-384 and is signed
/// (`manifest.sig`) with the audit checkpoint key. `verify` needs only that key's public half.
public enum EvidenceBundle {
    public static let manifestName = "manifest.json"
    public static let signatureName = "manifest.sig"
    static let format = "portcullis-evidence-bundle-v1"
    /// A manifest listing more is not one we wrote.
    static let maximumManifestBytes = 16 << 20
    static let maximumFiles = 10_000

    public struct Manifest: Codable, Equatable, Sendable {
        public var format: String
        /// `ac-10`, `fedramp`.
        public var report: String
        public var window: ReportWindow
        public var created: String
        /// `SHA256:…` of the checkpoint key that signed it (what `pcctl audit key` prints).
        public var signer: String
        public var files: [File]
    }

    public struct File: Codable, Equatable, Sendable {
        /// Relative, `/`-separated, no `..`.
        public var path: String
        public var sha384: String
        public var bytes: Int
    }

    /// Writes `files` (relative path and contents) into `directory`, which must not exist yet
    /// (made 0700, files 0600, nothing followed through a symbolic link), then the manifest and
    /// its signature from `sign`.
    public static func write(_ files: [(path: String, contents: [UInt8])], to directory: String, report: String, window: ReportWindow,
                             signer: String, crypto: CryptoContext, sign: ([UInt8]) throws -> [UInt8]) throws {
        guard mkdir(directory, 0o700) == 0 else {
            throw EvidenceBundleError.cannotWrite(directory, errno == EEXIST ? "it exists already: give a new directory" : String(cString: strerror(errno)))
        }
        var listed: [File] = []
        for file in files {
            guard isSafe(file.path), file.path != manifestName, file.path != signatureName else { throw EvidenceBundleError.unsafePath(file.path) }
            let components = file.path.split(separator: "/")
            var parent = directory
            for component in components.dropLast() {
                parent += "/" + component
                guard mkdir(parent, 0o700) == 0 || errno == EEXIST else { throw EvidenceBundleError.cannotWrite(parent, String(cString: strerror(errno))) }
            }
            try writeNew(file.contents, to: directory + "/" + file.path)
            listed.append(File(path: file.path, sha384: hex(try crypto.digest(.sha384, file.contents)), bytes: file.contents.count))
        }
        let manifest = Manifest(format: format, report: report, window: window, created: AuditTime.format(Date()), signer: signer,
                                files: listed.sorted { $0.path < $1.path })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let bytes = Array(try encoder.encode(manifest)) + [UInt8(ascii: "\n")]
        try writeNew(bytes, to: directory + "/" + manifestName)
        try writeNew(try sign(bytes), to: directory + "/" + signatureName)
    }

    /// What is wrong with the bundle in `directory`, checked against `publicKey` alone: an empty
    /// list when the signature holds and every file is as listed. A bad signature is reported
    /// alone (nothing the manifest says can be trusted then).
    public static func verify(directory: String, publicKey: PublicKey, crypto: CryptoContext) throws -> (manifest: Manifest?, problems: [EvidenceBundleError]) {
        let manifestBytes = try readAll(directory + "/" + manifestName, limit: maximumManifestBytes)
        let signature = try readAll(directory + "/" + signatureName, limit: 1024)
        guard publicKey.isValidSignature(signature, for: manifestBytes) else { return (nil, [.signatureInvalid]) }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(manifestBytes)) } catch {
            return (nil, [.malformedManifest("\(error)")])
        }
        guard manifest.format == format, manifest.files.count <= maximumFiles else {
            return (nil, [.malformedManifest("not a \(format) manifest, or too many files")])
        }
        var problems: [EvidenceBundleError] = []
        for file in manifest.files {
            guard isSafe(file.path) else { problems.append(.unsafePath(file.path)); continue }
            switch try digest(directory + "/" + file.path, crypto: crypto) {
            case nil: problems.append(.missing(file.path))
            case let (sha384, bytes)?: if sha384 != file.sha384 || bytes != file.bytes { problems.append(.altered(file.path)) }
            }
        }
        let known = Set(manifest.files.map(\.path) + [manifestName, signatureName])
        for path in try contents(of: directory) where !known.contains(path) { problems.append(.unexpected(path)) }
        return (manifest, problems)
    }

    static func isSafe(_ path: String) -> Bool {
        !path.isEmpty && path.count <= 255 && !path.hasPrefix("/") && !path.contains("\0")
            && path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    static func writeNew(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw EvidenceBundleError.cannotWrite(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            guard written > 0 else { throw EvidenceBundleError.cannotWrite(path, String(cString: strerror(errno))) }
            offset += written
        }
        guard fsync(fd) == 0 else { throw EvidenceBundleError.cannotWrite(path, String(cString: strerror(errno))) }
    }

    /// A regular file's bytes (never through a symbolic link), at most `limit`.
    static func readAll(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw EvidenceBundleError.cannotRead(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count >= 0 else { throw EvidenceBundleError.cannotRead(path, String(cString: strerror(errno))) }
            if count == 0 { return bytes }
            bytes += buffer.prefix(count)
            guard bytes.count <= limit else { throw EvidenceBundleError.cannotRead(path, "larger than \(limit) bytes") }
        }
    }

    /// SHA-384 (hex) and size of a regular file, read in pieces; `nil` when it is absent or not a
    /// regular file.
    static func digest(_ path: String, crypto: CryptoContext) throws -> (String, Int)? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return nil }
        let digest = try IncrementalDigest(.sha384, using: crypto)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count >= 0 else { throw EvidenceBundleError.cannotRead(path, String(cString: strerror(errno))) }
            if count == 0 { break }
            try digest.update(buffer.prefix(count))
            total += count
        }
        return (hex(try digest.finalize()), total)
    }

    /// Every file and link below `directory`, relative (directories themselves are not listed).
    static func contents(of directory: String) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else {
            throw EvidenceBundleError.cannotRead(directory, "not a directory")
        }
        var paths: [String] = []
        while let path = enumerator.nextObject() as? String {
            if enumerator.fileAttributes?[.type] as? FileAttributeType != .typeDirectory { paths.append(path) }
            guard paths.count <= maximumFiles else { throw EvidenceBundleError.cannotRead(directory, "more than \(maximumFiles) files") }
        }
        return paths.sorted()
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public enum EvidenceBundleError: Error, Equatable, CustomStringConvertible {
    case cannotWrite(String, String)
    case cannotRead(String, String)
    case unsafePath(String)
    case signatureInvalid
    case malformedManifest(String)
    case altered(String)
    case missing(String)
    case unexpected(String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason): "cannot write \(path): \(reason)"
        case .cannotRead(let path, let reason): "cannot read \(path): \(reason)"
        case .unsafePath(let path): "\(path.prefix(300)): not a plain relative path inside the bundle"
        case .signatureInvalid:
            "\(EvidenceBundle.manifestName) or \(EvidenceBundle.signatureName) was altered, or the bundle was not signed by this key"
        case .malformedManifest(let reason): "\(EvidenceBundle.manifestName) is signed but unreadable: \(reason)"
        case .altered(let path): "\(path): ALTERED (its SHA-384 or size differs from the signed manifest)"
        case .missing(let path): "\(path): MISSING (listed in the signed manifest)"
        case .unexpected(let path): "\(path): ADDED (not in the signed manifest)"
        }
    }
}
