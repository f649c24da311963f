import AdminAPI
import FIPSCrypto
import Foundation
import Identity

/// Runs bytes from an untrusted client through every decoder of the login API (anyone on the
/// network) and the administration API (a local operator, or whatever reached its socket): the
/// request bodies, role YAML and public key lines. For the fuzzer (`make fuzz`, target
/// `api-fuzz`) and a test on random inputs: whatever the bytes, this returns (errors expected)
/// without trapping, hanging or growing without bound.
public enum APIInput {
    public static func exercise(_ bytes: [UInt8], using crypto: CryptoContext) {
        let body = Data(bytes)
        // Login API.
        _ = try? API.decodeBody(LoginRoutes.LoginBody.self, body)
        _ = try? API.decodeBody(LoginRoutes.TokenBody.self, body)
        _ = try? API.decodeBody(LoginRoutes.AcceptBody.self, body)
        _ = try? API.decodeBody(NodeRoutes.List.self, body)
        _ = try? API.decodeBody(RecordingRoutes.Fetch.self, body)
        // Administration API.
        _ = try? API.decodeBody(NewUser.self, body)
        _ = try? API.decodeBody(UserChange.self, body)
        _ = try? API.decodeBody(CARotation.self, body)
        _ = try? API.decodeBody(NewLock.self, body)
        _ = try? API.decodeBody(NewHost.self, body)
        _ = try? API.decodeBody(Termination.self, body)
        _ = try? API.decodeBody(HostSigning.self, body)
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? RoleYAML.parse(text, file: "fuzz.yaml")
        _ = try? IdentityService.parsePublicKey(text, using: crypto)
    }
}
