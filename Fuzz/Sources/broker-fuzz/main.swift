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
    if request.problem == nil {
        // What the broker acts on: a session id that stays inside its cgroup tree, a login
        // useradd would take, and a frame that says it again.
        precondition(BrokerRequest.isSessionID(request.session) && !request.session.contains("/") && request.session != ".."
                     && request.session != ".")
        precondition((try? BrokerFrame.request(try BrokerFrame.body(of: try BrokerFrame.encode(request)))) == request)
    }
    return 0
}

runFuzzer { fuzzOne($0, $1) }
