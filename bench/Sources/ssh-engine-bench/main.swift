import FIPSCrypto
import Foundation
import NIOCore
import SSH
import SSHExampleServer

// Runs our SSH engine as a server for bench/ssh-engine.sh: FIPS mode, a fresh ECDSA P-256 host
// key, user certificates from the CA in --ca, exec and sftp sessions. Prints "listening PORT".
//   ssh-engine-bench --fips-prefix P --ca ca.pub [--port N]

var arguments = CommandLine.arguments.dropFirst().makeIterator()
var fipsPrefix: String?, caFile: String?, port = 0
while let argument = arguments.next() {
    switch argument {
    case "--fips-prefix": fipsPrefix = arguments.next()
    case "--ca": caFile = arguments.next()
    case "--port": port = Int(arguments.next() ?? "") ?? 0
    default:
        FileHandle.standardError.write(Data("usage: ssh-engine-bench --fips-prefix P --ca ca.pub [--port N]\n".utf8))
        exit(2)
    }
}
guard let fipsPrefix, let caFile else {
    FileHandle.standardError.write(Data("ssh-engine-bench: --fips-prefix and --ca are required\n".utf8))
    exit(2)
}
let crypto = try CryptoContext(mode: .fips(FIPSProviderConfiguration(opensslConfig: "\(fipsPrefix)/ssl/openssl.cnf",
                                                                      modulesDirectory: "\(fipsPrefix)/lib/ossl-modules")))
let caLine = try String(contentsOfFile: caFile, encoding: .utf8).split(separator: " ")
guard caLine.count >= 2, let caBlob = Base64.decode(String(caLine[1])) else {
    FileHandle.standardError.write(Data("ssh-engine-bench: \(caFile) is not an OpenSSH public key\n".utf8))
    exit(2)
}
let server = try await ExampleServer.start(port: port, crypto: crypto, hostKeys: [try PrivateKey(generate: .ecdsaP256, using: crypto)],
                                           authenticator: CertificateAuthenticator(trustedAuthorities: [try PublicKey(sshWire: caBlob, using: crypto)]))
FileHandle.standardOutput.write(Data("listening \(server.localAddress!.port!)\n".utf8))
try await server.closeFuture.get()
