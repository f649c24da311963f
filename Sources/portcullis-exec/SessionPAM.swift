import CPAM
import Foundation
import LaunchProtocol

/// The session's PAM transaction, opened before the fork and the privilege drop and closed after
/// the program is reaped, as sshd does: the host's account stack (pam_access, pam_faillock,
/// expiry) may refuse the session, and its session stack (pam_limits, pam_env, pam_loginuid,
/// pam_systemd, pam_motd) shapes it. No `auth`: the certificate authenticated the user, and a
/// prompt is refused. PAM's text goes to an interactive session's terminal and nowhere else.
enum SessionPAM {
    nonisolated(unsafe) private static var handle: OpaquePointer?
    nonisolated(unsafe) private static var credentialsSet = false
    nonisolated(unsafe) private static var sessionOpen = false

    /// The PAM environment to merge into the program's; a refusal ends the launcher with PAM's
    /// reason (the user's stderr, and `session.rejected`).
    static func open(service: String, spec: LaunchSpec) -> [String: String] {
        let terminal = isatty(0) == 1 ? ttyname(0).map { String(cString: $0) } : nil
        var started: OpaquePointer?
        // PAM's text goes to an interactive shell's terminal; a command's output stays its own.
        let status = pc_pam_start(service, spec.login, terminal != nil && spec.command == nil ? 1 : -1, &started)
        guard status == PAM_SUCCESS, let started else { fail("PAM service \(service) could not start: \(reason(status, nil))") }
        handle = started
        // PAM_TTY: the pts (logind and pam_access classify the session by it), else "ssh", as sshd.
        set(PAM_TTY, terminal ?? "ssh")
        if let remote = spec.remoteAddress { set(PAM_RHOST, remote) }
        set(PAM_RUSER, spec.portcullisUser)
        var variables = spec.pamEnvironment ?? [:]
        variables["PORTCULLIS_USER"] = spec.portcullisUser
        variables["PORTCULLIS_LOGIN"] = spec.login
        variables["PORTCULLIS_ROLES"] = (spec.roles ?? []).joined(separator: ",")
        variables["PORTCULLIS_SESSION_ID"] = spec.sessionID ?? ""
        // The PAM environment is what pam_exec hooks run with, as root: the daemon's values go in
        // only under names that cannot make a loader or a shell run something, and not PATH.
        for (name, value) in variables.sorted(by: { $0.key < $1.key })
        where SessionEnvironment.mayGoIntoPAM(name) && !value.utf8.contains(0) && value.utf8.count <= SessionEnvironment.maximumValueBytes {
            _ = pam_putenv(started, "\(name)=\(value)")
        }
        pc_pam_forget_message()
        let account = pam_acct_mgmt(started, 0)
        guard account == PAM_SUCCESS else {
            let why = account == PAM_NEW_AUTHTOK_REQD ? "the password of \(spec.login) has expired and must be changed on the host" : reason(account, started)
            end(account)
            fail("access denied by the host's account policy (PAM \(service)): \(why)")
        }
        pc_pam_forget_message()
        let credentials = pam_setcred(started, Int32(PAM_ESTABLISH_CRED))
        guard credentials == PAM_SUCCESS else {
            end(credentials)
            fail("PAM \(service) could not establish credentials: \(reason(credentials, started))")
        }
        credentialsSet = true
        pc_pam_forget_message()
        let session = pam_open_session(started, 0)
        guard session == PAM_SUCCESS else {
            close()
            fail("PAM \(service) refused to open the session: \(reason(session, started))")
        }
        sessionOpen = true
        return environment(started)
    }

    /// After the program ends (or a failure after `open`): the session closed, the credentials
    /// deleted, the transaction ended.
    static func close() {
        guard let started = handle else { return }
        var last: Int32 = PAM_SUCCESS
        if sessionOpen { last = pam_close_session(started, 0) }
        if credentialsSet { _ = pam_setcred(started, Int32(PAM_DELETE_CRED)) }
        sessionOpen = false
        credentialsSet = false
        end(last)
    }

    private static func end(_ status: Int32) {
        guard let started = handle else { return }
        _ = pam_end(started, status)
        handle = nil
    }

    private static func set(_ item: Int32, _ value: String) {
        guard let handle else { return }
        _ = pc_pam_set_string(handle, item, value)
    }

    /// The module's own words when it said something, else PAM's for the status.
    private static func reason(_ status: Int32, _ handle: OpaquePointer?) -> String {
        let said = String(cString: pc_pam_last_message())
        if !said.isEmpty { return said }
        return pam_strerror(handle, status).map { String(cString: $0) } ?? "PAM error \(status)"
    }

    private static func environment(_ handle: OpaquePointer) -> [String: String] {
        guard let list = pam_getenvlist(handle) else { return [:] }
        var variables: [String: String] = [:]
        var index = 0
        while let entry = list[index] {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") { variables[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            free(entry)
            index += 1
        }
        free(list)
        return variables
    }
}
