import Audit
import FIPSCrypto
import Foundation
import PrintableText

/// What an auditor receives: a directory holding a report in every form, the exported events and
/// the roles it was computed from (so it can be reproduced offline), the audit log's own
/// verification, and `manifest.json`, which lists every file with its SHA-384 and is signed
/// (`manifest.sig`) with the audit checkpoint key. `verify` needs only that key's public half.
public enum EvidenceBundle {
    public static let manifestName = "manifest.json"
    public static let signatureName = "manifest.sig"
    public static let format = "portcullis-evidence-bundle-v1"
    /// A manifest listing more is not one we wrote.
    static let maximumManifestBytes = 16 << 20
    static let maximumFiles = 10_000

    public struct Manifest: Codable, Equatable, Sendable {
        public var format: String
        /// `ac-10`, `fedramp`.
        public var report: String
        public var window: ReportWindow
        /// The `pcctl` arguments that reproduce `report.json` from the bundle alone.
        public var reproduce: [String]
        public var generator: String
        public var created: String
        /// `SHA256:…` of the checkpoint key that signed it (what `pcctl audit key` prints).
        public var signer: String
        public var files: [File]

        public init(report: String, window: ReportWindow, reproduce: [String], generator: String, created: Date, signer: String) {
            self.format = EvidenceBundle.format
            self.report = report
            self.window = window
            self.reproduce = reproduce
            self.generator = generator
            self.created = AuditTime.format(created)
            self.signer = signer
            self.files = []
        }
    }

    public struct File: Codable, Equatable, Sendable {
        /// Relative, `/`-separated, no `..`.
        public var path: String
        public var sha384: String
        public var bytes: Int
    }

    /// Writes `files` (relative path and contents) into `directory`, which must not exist yet
    /// (made 0700, files 0600, every step relative to the new directory and never through a
    /// link), then the manifest and its signature from `sign`. On a failure nothing half-made is
    /// left behind.
    public static func write(_ files: [(path: String, contents: [UInt8])], to directory: String, manifest: Manifest,
                             crypto: CryptoContext, sign: ([UInt8]) throws -> [UInt8]) throws {
        let root = try DirectoryHandle.create(directory)
        do {
            var manifest = manifest
            manifest.format = format
            manifest.files = []
            var seen = Set<String>()
            for file in files {
                guard isSafe(file.path), file.path != manifestName, file.path != signatureName, seen.insert(file.path).inserted else {
                    throw EvidenceBundleError.unsafePath(file.path)
                }
                var components = file.path.split(separator: "/").map(String.init)
                let name = components.removeLast()
                let parent = try components.reduce(root) { try $0.directory($1, create: true) }
                try parent.writeNew(name, file.contents)
                try parent.sync()
                manifest.files.append(File(path: file.path, sha384: Hex.encode(try crypto.digest(.sha384, file.contents)), bytes: file.contents.count))
            }
            manifest.files.sort { $0.path < $1.path }
            let bytes = Array(try ReportJSON.encoder().encode(manifest)) + [UInt8(ascii: "\n")]
            try root.writeNew(manifestName, bytes)
            try root.writeNew(signatureName, try sign(bytes))
            try root.sync()
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// What is wrong with the bundle in `directory`, checked against `publicKey` alone: an empty
    /// list when the signature holds, the manifest names that key, every file is as listed and
    /// nothing was added. A bad signature is reported alone (nothing the manifest says can be
    /// trusted then). Links, FIFOs and other non-files are problems, never followed or read.
    public static func verify(directory: String, publicKey: PublicKey, crypto: CryptoContext) throws -> (manifest: Manifest?, problems: [EvidenceBundleError]) {
        let root = try DirectoryHandle.open(directory)
        let manifestBytes = try root.read(manifestName, limit: maximumManifestBytes)
        let signature = try root.read(signatureName, limit: 1024)
        guard publicKey.isValidSignature(signature, for: manifestBytes) else { return (nil, [.signatureInvalid]) }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(manifestBytes)) } catch {
            return (nil, [.malformedManifest("\(error)")])
        }
        guard manifest.format == format, manifest.files.count <= maximumFiles,
              Set(manifest.files.map { Array($0.path.utf8) }).count == manifest.files.count else {
            return (nil, [.malformedManifest("not a \(format) manifest, or a file listed twice or too many files")])
        }
        guard manifest.signer == (try publicKey.fingerprint()) else {
            return (manifest, [.malformedManifest("it names signer \(manifest.signer), not this key")])
        }
        var problems: [EvidenceBundleError] = []
        for file in manifest.files {
            guard isSafe(file.path) else { problems.append(.unsafePath(file.path)); continue }
            var components = file.path.split(separator: "/").map(String.init)
            let name = components.removeLast()
            guard let parent = try? components.reduce(root, { try $0.directory($1) }), let opened = parent.openRegularFile(name) else {
                problems.append(.missing(file.path))
                continue
            }
            defer { close(opened.descriptor) }
            // A size that differs is enough: a huge (or sparse) replacement is never read.
            guard opened.size == file.bytes, try digest(opened.descriptor, crypto: crypto) == file.sha384 else {
                problems.append(.altered(file.path))
                continue
            }
        }
        let known = Set(manifest.files.map { Array($0.path.utf8) } + [Array(manifestName.utf8), Array(signatureName.utf8)])
        var remaining = maximumFiles * 2
        try walk(root, prefix: [], depth: 0, remaining: &remaining) { path, kind in
            if kind == .directory { return }
            if !known.contains(path) { problems.append(.unexpected(String(decoding: path, as: UTF8.self))) }
        }
        return (manifest, problems)
    }

    /// Every entry below `directory`, depth first, with its path relative to the root.
    static func walk(_ directory: DirectoryHandle, prefix: [UInt8], depth: Int, remaining: inout Int,
                     _ visit: ([UInt8], DirectoryHandle.EntryKind) -> Void) throws {
        guard depth < 16 else { throw EvidenceBundleError.cannotRead(String(decoding: prefix, as: UTF8.self), "nested too deeply") }
        for entry in try directory.entries().sorted(by: { $0.name.lexicographicallyPrecedes($1.name) }) {
            remaining -= 1
            guard remaining > 0 else { throw EvidenceBundleError.cannotRead(String(decoding: prefix, as: UTF8.self), "too many files") }
            let path = prefix.isEmpty ? entry.name : prefix + [UInt8(ascii: "/")] + entry.name
            visit(path, entry.kind)
            if entry.kind == .directory {
                guard let name = String(validating: entry.name, as: UTF8.self) else {
                    visit(path, .other)
                    continue
                }
                try walk(try directory.directory(name), prefix: path, depth: depth + 1, remaining: &remaining, visit)
            }
        }
    }

    static func isSafe(_ path: String) -> Bool {
        !path.isEmpty && path.utf8.count <= 255 && !path.hasPrefix("/") && !path.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
            && path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    /// SHA-384 (hex) of what remains to be read from `descriptor`, in pieces.
    static func digest(_ descriptor: Int32, crypto: CryptoContext) throws -> String {
        let digest = try IncrementalDigest(.sha384, using: crypto)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw EvidenceBundleError.cannotRead("a bundle file", String(cString: strerror(errno))) }
            if count == 0 { break }
            try digest.update(buffer.prefix(count))
        }
        return Hex.encode(try digest.finalize())
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
        // Names an attacker chose: a bidi override could redraw a line to read "intact".
        let shown = PrintableText.escaped
        return switch self {
        case .cannotWrite(let path, let reason): "cannot write \(shown(path)): \(reason)"
        case .cannotRead(let path, let reason): "cannot read \(shown(path)): \(reason)"
        case .unsafePath(let path): "\(shown(String(path.prefix(300)))): not a plain relative path inside the bundle"
        case .signatureInvalid:
            "\(EvidenceBundle.manifestName) or \(EvidenceBundle.signatureName) was altered, or the bundle was not signed by this key"
        case .malformedManifest(let reason): "\(EvidenceBundle.manifestName) is signed but not acceptable: \(shown(reason))"
        case .altered(let path): "\(shown(path)): ALTERED (its SHA-384 or size differs from the signed manifest)"
        case .missing(let path): "\(shown(path)): MISSING (listed in the signed manifest; absent, or not a regular file)"
        case .unexpected(let path): "\(shown(path)): ADDED (not in the signed manifest)"
        }
    }
}
