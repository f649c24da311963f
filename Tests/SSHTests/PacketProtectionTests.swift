import FIPSCrypto
import NIOCore
@testable import SSH
import TestSupport
import XCTest

final class PacketProtectionTests: XCTestCase {
    private func pair(_ cipher: CipherMethod, _ crypto: CryptoContext) throws -> (PacketProtection, PacketProtection) {
        let key = try crypto.randomBytes(cipher.keySize), iv = try crypto.randomBytes(12)
        return (try PacketProtection(cipher: cipher, key: SymmetricKey(bytes: key), iv: iv, crypto: crypto),
                try PacketProtection(cipher: cipher, key: SymmetricKey(bytes: key), iv: iv, crypto: crypto))
    }

    func testRoundTripOfManyPacketsWithAdvancingNonce() throws {
        let crypto = try TestEnvironment.fipsContext()
        for cipher in [CipherMethod.aes128GCM, .aes256GCM] {
            let (sender, receiver) = try pair(cipher, crypto)
            var wire = ByteBufferAllocator().buffer(capacity: 1 << 16)
            var sent: [[UInt8]] = []
            for size in [0, 1, 15, 16, 17, 1000, 32768] {
                let payload = try crypto.randomBytes(size)
                sent.append(payload)
                try sender.seal(ByteBuffer(bytes: payload), into: &wire)
            }
            // Arrives in pieces: nothing is returned until a packet is whole.
            var received: [[UInt8]] = []
            var inbound = ByteBufferAllocator().buffer(capacity: wire.readableBytes)
            while wire.readableBytes > 0 {
                var piece = wire.readSlice(length: min(7, wire.readableBytes))!
                inbound.writeBuffer(&piece)
                while let payload = try receiver.open(from: &inbound) { received.append(Array(payload.readableBytesView)) }
            }
            XCTAssertEqual(received, sent, "\(cipher)")
        }
    }

    func testEveryPacketsPaddingIsFreshRandomness() throws {
        // Padding comes from a pool drawn from the DRBG a few KiB at a time: each take is the
        // next bytes of the pool, or the start of a new one, never bytes handed out before.
        let crypto = try TestEnvironment.fipsContext()
        let plain = PacketProtection(plaintextUsing: crypto)
        var previous: ArraySlice<UInt8>? = nil
        var refills = 0
        var seen = Set<[UInt8]>()
        for index in 0..<3000 {
            let count = 4 + index % 16
            let padding = try plain.takePadding(count)
            XCTAssertEqual(padding.count, count)
            if let previous, padding.startIndex != previous.endIndex {
                XCTAssertEqual(padding.startIndex, 0, "a take that neither follows the last nor starts a new pool")
                refills += 1
            }
            seen.insert(Array(padding))
            previous = padding
        }
        XCTAssertGreaterThanOrEqual(refills, 3)
        XCTAssertEqual(seen.count, 3000, "a padding repeated")
        // And on the wire: a packet's padding is the length its byte says, at least 4.
        var wire = ByteBufferAllocator().buffer(capacity: 64)
        try plain.seal(ByteBuffer(bytes: [94]), into: &wire)
        let packet = Array(wire.readableBytesView)
        XCTAssertGreaterThanOrEqual(Int(packet[4]), 4)
        XCTAssertEqual(packet.count, 5 + 1 + Int(packet[4]))
    }

    func testTamperedPacketIsAMACErrorAndReplayFails() throws {
        let crypto = try TestEnvironment.fipsContext()
        let (sender, receiver) = try pair(.aes256GCM, crypto)
        var wire = ByteBufferAllocator().buffer(capacity: 256)
        try sender.seal(ByteBuffer(bytes: Array("hello".utf8)), into: &wire)
        let packet = Array(wire.readableBytesView)
        var tampered = ByteBuffer(bytes: packet)
        tampered.setInteger(tampered.getInteger(at: 10, as: UInt8.self)! ^ 1, at: 10)
        XCTAssertThrowsError(try receiver.open(from: &tampered)) { XCTAssertEqual(($0 as? SSHError)?.reason, .macError) }

        let (sender2, receiver2) = try pair(.aes128GCM, crypto)
        var first = ByteBufferAllocator().buffer(capacity: 256)
        try sender2.seal(ByteBuffer(bytes: [1]), into: &first)
        let copy = Array(first.readableBytesView)
        XCTAssertNotNil(try receiver2.open(from: &first))
        var replay = ByteBuffer(bytes: copy)
        XCTAssertThrowsError(try receiver2.open(from: &replay), "the same packet again uses the next nonce and fails")
    }

    func testBadLengthsAreRefusedBeforeBuffering() throws {
        let crypto = try TestEnvironment.fipsContext()
        let plain = PacketProtection(plaintextUsing: crypto)
        for length in [UInt32(0), 3, UInt32(PacketProtection.maximumPacketLength + 4), UInt32.max] {
            var buffer = ByteBufferAllocator().buffer(capacity: 8)
            buffer.writeInteger(length)
            XCTAssertThrowsError(try plain.open(from: &buffer), "length \(length)") {
                XCTAssertEqual(($0 as? SSHError)?.reason, .protocolError)
            }
        }
        var misaligned = ByteBufferAllocator().buffer(capacity: 8)
        misaligned.writeInteger(UInt32(13))
        XCTAssertThrowsError(try plain.open(from: &misaligned))
        var badPadding = ByteBufferAllocator().buffer(capacity: 16)
        badPadding.writeInteger(UInt32(12))
        badPadding.writeBytes([2] + [UInt8](repeating: 0, count: 11))   // padding_length 2 < 4
        XCTAssertThrowsError(try plain.open(from: &badPadding))
    }
}
