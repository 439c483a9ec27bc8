import Crypto
import Foundation
import NIOPosix
import RPCCore
import Synchronization
import _CryptoExtras

#if canImport(Glibc)
    import Glibc
#endif

/// scrypt's cost parameters: N = 2^logN, block size r, parallelism p.
struct ScryptParameters: Sendable, Equatable, CustomStringConvertible {
    var logN: Int
    var r: Int
    var p: Int

    /// N=2^17, r=8, p=1 (OWASP's recommendation): 128 MiB and a few hundred milliseconds per hash.
    static let recommended = ScryptParameters(logN: 17, r: 8, p: 1)

    var description: String { "ln=\(logN),r=\(r),p=\(p)" }
}

/// Hashes and checks passwords with scrypt, in the self-describing form
/// `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (base64), so parameters can change without a migration.
///
/// Hashing takes a lot of CPU and memory, so it runs on its own threads, never on an event loop or
/// the cooperative pool, and a flood of sign-ins queues up (to a bound) instead of starving other calls.
final class PasswordHasher: Sendable {
    let parameters: ScryptParameters
    private let threads: NIOThreadPool
    private let queued = Atomic<Int>(0)
    private let maxQueued: Int
    /// A hash of a random password, checked against when there is no user, so that an unknown
    /// email costs the same time as a wrong password.
    private let decoy: String

    /// `concurrency` hashes run at once; beyond `maxQueued` waiting, callers get `IdentityError.busy`.
    init(parameters: ScryptParameters, concurrency: Int, maxQueued: Int = 256) {
        self.parameters = parameters
        self.maxQueued = maxQueued
        threads = NIOThreadPool(numberOfThreads: max(1, concurrency))
        threads.start()
        // Checking costs the same whatever the stored hash holds, so a random one serves (it never matches).
        let random = { (bytes: Int) in SymmetricKey(size: .init(bitCount: bytes * 8)).withUnsafeBytes { Data($0).base64EncodedString() } }
        decoy = "$scrypt$\(parameters)$\(random(16))$\(random(32))"
    }

    deinit {
        threads.shutdownGracefully { _ in }
    }

    /// A new hash of `password` with the current parameters.
    func hash(_ password: String) async throws -> String {
        try await offload { [parameters] in try Self.hash(password, parameters: parameters) }
    }

    /// Whether `password` matches `stored`, and whether `stored` should be replaced because it was
    /// made with other parameters. A nil `stored` (no such user) costs the same and never matches.
    func verify(_ password: String, against stored: String?) async throws -> (matches: Bool, needsRehash: Bool) {
        let target = stored ?? decoy
        let current = parameters
        let result = try await offload { () throws -> (Bool, Bool) in
            guard let parsed = StoredHash(target) else { return (false, false) }
            let derived = try Self.derive(password, salt: parsed.salt, parameters: parsed.parameters, length: parsed.hash.count)
            return (constantTimeEquals(derived, parsed.hash), parsed.parameters != current)
        }
        return stored == nil ? (false, false) : result
    }

    /// Runs the work on the hashing threads, refusing when too much is already waiting.
    private func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        guard queued.add(1, ordering: .relaxed).newValue <= maxQueued else {
            queued.subtract(1, ordering: .relaxed)
            throw IdentityError.busy
        }
        defer { queued.subtract(1, ordering: .relaxed) }
        return try await threads.runIfActive {
            Self.yieldToEventLoops()
            return try work()
        }
    }

    /// Lowers the hashing thread's scheduling priority (nice 10), so that on a busy machine the
    /// event loops answering other calls get the cores first. Linux sets nice per thread.
    private static func yieldToEventLoops() {
        #if os(Linux)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)  // 0: the calling thread, on Linux
        #endif
    }

    static func hash(_ password: String, parameters: ScryptParameters) throws -> String {
        let salt = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        let derived = try derive(password, salt: salt, parameters: parameters, length: 32)
        return "$scrypt$\(parameters)$\(Data(salt).base64EncodedString())$\(Data(derived).base64EncodedString())"
    }

    private static func derive(_ password: String, salt: [UInt8], parameters: ScryptParameters, length: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: length,
            rounds: 1 << parameters.logN, blockSize: parameters.r, parallelism: parameters.p)
        return key.withUnsafeBytes { Array($0) }
    }

    /// A stored hash taken apart; nil when it is not in our format.
    private struct StoredHash {
        var parameters: ScryptParameters
        var salt: [UInt8]
        var hash: [UInt8]

        init?(_ text: String) {
            let parts = text.split(separator: "$", omittingEmptySubsequences: false)
            guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return nil }
            var values: [String: Int] = [:]
            for pair in parts[2].split(separator: ",") {
                let nameAndValue = pair.split(separator: "=")
                guard nameAndValue.count == 2, let value = Int(nameAndValue[1]) else { return nil }
                values[String(nameAndValue[0])] = value
            }
            guard let logN = values["ln"], let r = values["r"], let p = values["p"], (1...30).contains(logN),
                let salt = Data(base64Encoded: String(parts[3])), let hash = Data(base64Encoded: String(parts[4])),
                !hash.isEmpty
            else { return nil }
            parameters = ScryptParameters(logN: logN, r: r, p: p)
            self.salt = Array(salt)
            self.hash = Array(hash)
        }
    }
}
