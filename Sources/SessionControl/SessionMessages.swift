/// What a session is told when the node (or the proxy recording it) fails it (the reference's words).
public enum SessionMessages {
    public static let nodeError = "Session terminating due to node error."
    /// Enhanced recording lost events of the session, and the roles' `on_loss: strict` ends it.
    public static let enhancedRecordingLost = "Session terminating: enhanced recording lost events of this session, and the node's policy is strict."
    public static let recordingWarning = "Warning: node error. This might cause some functionalities not to work correctly."
    /// `max_sessions` reached: the refusal and the `session.rejected` reason.
    public static func tooManySessions(user: String, max: Int) -> String { "too many session channels for user \"\(user)\" (max=\(max))" }
    public static let maxSessionsReason = "max_sessions limit reached"
    /// `ssh_file_copy: false`: what the user is told, and the failed `exec`'s `exitError`.
    public static func fileCopyRefused(user: String) -> String { "file copying (scp, sftp) is not permitted for user \"\(user)\"" }
    /// The lock view failed under `locking_mode: strict` (the reference's words).
    public static let lockViewUnreliable = "preventive lock-out due to local lock view becoming unreliable"
    public static let fileCopyOff = "ssh_file_copy is off"
}
