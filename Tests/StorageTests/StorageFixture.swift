import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

/// A data directory with a SQLite backend, a KEK file and a keyring, as the appliance has them.
final class StorageFixture: Sendable {
    let directory: URL
    let crypto: CryptoContext
    let kekFile: String
    let raw: SQLiteBackend
    let keyring: Keyring
    let sealed: SealedBackend
    var databasePath: String { raw.path }

    init(crypto: CryptoContext? = nil, pollInterval: Duration = .milliseconds(50)) async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-storage")
        self.crypto = try crypto ?? TestEnvironment.fipsContext()
        kekFile = directory.appendingPathComponent("kek").path
        try KeyEncryptionKeySource.generate(at: kekFile, using: self.crypto)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("data"), withIntermediateDirectories: true)
        raw = try SQLiteBackend(path: directory.appendingPathComponent("data/portcullis.db").path, pollInterval: pollInterval)
        let kek = try KeyEncryptionKeySource(location: .file(path: kekFile)).load()
        keyring = try await Keyring.open(backend: raw, kek: kek, crypto: self.crypto)
        sealed = SealedBackend(base: raw, keyring: keyring)
    }

    /// Another process's view of the same data directory: its own connection pool and keyring.
    func secondOpener(kek: SymmetricKey? = nil) async throws -> (SQLiteBackend, SealedBackend) {
        let backend = try SQLiteBackend(path: databasePath, pollInterval: .milliseconds(50))
        let key = try kek ?? KeyEncryptionKeySource(location: .file(path: kekFile)).load()
        let keyring = try await Keyring.open(backend: backend, kek: key, crypto: crypto)
        return (backend, SealedBackend(base: backend, keyring: keyring))
    }

    func tearDown() async {
        await raw.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Collects watch events in the background so a test can wait for them.
final class EventCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [WatchEvent] = []
    private var task: Task<Void, Never>?
    private(set) var failure: Error?

    init(_ stream: AsyncThrowingStream<WatchEvent, Error>) {
        task = Task {
            do {
                for try await event in stream { self.lock.withLock { self.events.append(event) } }
            } catch {
                self.lock.withLock { self.failure = error }
            }
        }
    }

    var received: [WatchEvent] { lock.withLock { events } }

    /// Waits until `count` events arrived (at most `timeout`), then returns what arrived.
    func wait(for count: Int, timeout: Duration = .seconds(5)) async -> [WatchEvent] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while received.count < count, clock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return received
    }

    /// Waits until `condition` holds for what arrived (at most `timeout`), then returns it.
    func wait(timeout: Duration = .seconds(5), until condition: ([WatchEvent]) -> Bool) async -> [WatchEvent] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !condition(received), clock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return received
    }

    func cancel() { task?.cancel() }
}
