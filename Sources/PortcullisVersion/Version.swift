/// The release version, shown by every program's `version` command.
public enum PortcullisVersion {
    public static let version = "0.1.0"
}
