import Foundation
import FuzzDriver
import LaunchProtocol

// The root broker's request parser (what portcullis-privd does with every message its socket
// receives before anything is done): the frame's length, the JSON request, its validation. A
// crash, a hang or an accepted request that fails its own validation is a finding.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let body = try? BrokerFrame.body(of: bytes), let request = try? BrokerFrame.request(body) else { return 0 }
    guard request.problem == nil else { return 0 }
    // What the broker acts on: an audit record of bounded printable text, or a session id that
    // names a cgroup inside its tree — and a frame that says the same again.
    if case .audit(_, let message, _, _) = request {
        precondition(message.utf8.count <= 1024 && message.utf8.allSatisfy { (0x20...0x7e).contains($0) })
    } else {
        precondition(BrokerRequest.isSessionID(request.session) && !request.session.contains("/") && !request.session.contains("."))
    }
    precondition((try? BrokerFrame.request(try BrokerFrame.body(of: try BrokerFrame.encode(request)))) == request)
    return 0
}

runFuzzer { fuzzOne($0, $1) }
