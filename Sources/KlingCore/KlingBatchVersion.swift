/// The product's version, written into manifests and the User-Agent so outputs can be traced to a build.
public enum KlingBatchVersion {
    public static let current = "0.1.0"
}
