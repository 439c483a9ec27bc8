import Foundation
import RPCCore

/// Files a service writes hold secrets (signing keys, password hashes, emailed link tokens), so
/// they are readable by the service's user only, whatever the umask the process started with.
public enum PrivateFiles {
    /// New files 0600 and directories 0700 from now on, for every file this process creates
    /// (SQLite's database, journal and WAL files included, which it creates itself).
    public static func restrictNewFiles() {
        umask(0o077)
    }

    /// Creates `path` (and missing parents) and makes it 0700.
    public static func makeDirectory(_ path: String) throws {
        restrictNewFiles()
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        guard chmod(path, 0o700) == 0 else {
            throw ConfigurationError("cannot make \(path) private (chmod 700): \(String(cString: strerror(errno)))")
        }
    }

    /// The permission bits of `path`, or nil when it does not exist.
    public static func mode(of path: String) -> mode_t? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return status.st_mode & 0o777
    }

    /// Throws, saying how to fix it, when `path` exists and its group or others may read or write it.
    public static func refuseIfShared(_ path: String, holding what: String) throws {
        guard let mode = mode(of: path), mode & 0o077 != 0 else { return }
        throw ConfigurationError(
            """
            \(path) holds \(what) but its mode is \(String(mode, radix: 8)): other users may read it. \
            Stop the service, run 'chmod 600 \(path)*', check who may have copied it (rotate the keys if in doubt), and start again
            """)
    }

    /// Makes an existing file 0600 (files written before this rule existed).
    public static func tighten(_ path: String) {
        if let mode = mode(of: path), mode & 0o077 != 0 { chmod(path, 0o600) }
    }
}
