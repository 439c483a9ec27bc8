import AWSMarketplace
import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import GRDB
import Logging
import RPCCore
import ServiceRuntime
import Synchronization

/// The binding saga: BindOrganization records the intent (BINDING) durably, then organization's
/// SetBillingAccount is retried until it answers for good; after a cancellation,
/// ClearBillingAccount the same way. `LinkLifecycle` rules each outcome.
final class BindingSaga: Sendable {
    private let pool: DatabasePool
    private let organization: ConnectClient
    private let authenticator: AccessTokenAuthenticator
    /// Tells the billing page that links changed.
    private let linksWritten: @Sendable () -> Void
    /// Longest wait between retries.
    private let longestRetryDelay: TimeInterval
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// Wakes the saga runner when a binding is recorded.
    let wake = WakeSignal()
    /// Links whose saga step is running now, each with whoever waits for that step to end.
    private let stepsInFlight = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    init(
        pool: DatabasePool, organization: ConnectClient, authenticator: AccessTokenAuthenticator,
        linksWritten: @escaping @Sendable () -> Void,
        longestRetryDelay: TimeInterval = 60, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.pool = pool
        self.organization = organization
        self.authenticator = authenticator
        self.linksWritten = linksWritten
        self.longestRetryDelay = longestRetryDelay
        self.now = now
        self.logger = logger
    }

    /// Returns the link as the first attempt left it (usually ACTIVE).
    func bind(_ request: BindOrganizationRequest, bearerToken: String?) async throws -> LinkStore.Link {
        let claims = try await authenticator.authenticate(bearerToken)
        guard claims.emailVerified else { throw MarketplaceLinkError.emailNotVerified }
        guard SecretToken.isWellFormed(request.claim) else { throw MarketplaceLinkError.claimUnknown }
        let organizationID = request.organizationId
        guard (1...64).contains(organizationID.utf8.count) else {
            throw MarketplaceLinkError.invalid(field: "organizationId", reason: "is required (at most 64 characters)")
        }
        let claimHash = SecretToken.hash(request.claim)
        // Fail fast on the claim before asking organization anything.
        _ = try ClaimRules.usable(try await pool.read { db in try LinkStore.registration(db, claimHash: claimHash) }, at: now())
        let admin: CheckAdminResponse
        do {
            admin = try await organization.call(
                Organizations.checkAdmin, MemberRef(organizationId: organizationID, userId: claims.subject),
                options: .init(timeout: .seconds(5)))
        } catch {
            if error.code == .invalidArgument {
                throw MarketplaceLinkError.invalid(field: "organizationId", reason: "is not a valid organization id")
            }
            throw MarketplaceLinkError.organizationUnavailable
        }
        guard admin.isAdmin else { throw MarketplaceLinkError.notAdmin }

        let at = now()
        let linkID = try await pool.write { db in
            let registration = try ClaimRules.usable(try LinkStore.registration(db, claimHash: claimHash), at: at)
            switch try LinkStore.recordBinding(db, registration: registration, organizationID: organizationID, userID: claims.subject, at: at) {
            case .recorded(let linkID): return linkID
            case .accountAlreadyLinked: throw MarketplaceLinkError.accountAlreadyLinked
            case .organizationAlreadyLinked: throw MarketplaceLinkError.organizationAlreadyLinked
            }
        }
        linksWritten()
        logger.info("binding recorded", metadata: ["link_id": "\(linkID)", "organization_id": "\(organizationID)"])
        // The first attempt is made now, so the answer is usually ACTIVE; if the runner picked the
        // link up first, wait for its attempt instead.
        while await !advance(linkID: linkID) {
            await stepEnded(linkID: linkID)
        }
        wake.signal()
        guard let link = try await pool.read({ db in try LinkStore.link(db, id: linkID) }) else { throw MarketplaceLinkError.notFound }
        return link
    }

    /// One saga step for a link that owes organization one: SET_BILLING after a bind (success makes
    /// a BINDING link ACTIVE; a permanent refusal makes it FAILED, which frees the account and the
    /// organization for another binding), CLEAR_BILLING after a cancellation. Anything else is
    /// retried later with backoff. One step per link at a time, so a clear never overtakes a set;
    /// returns false, doing nothing, while another step of the link is running.
    @discardableResult
    func advance(linkID: String) async -> Bool {
        let started = stepsInFlight.withLock { steps -> Bool in
            guard steps[linkID] == nil else { return false }
            steps[linkID] = []
            return true
        }
        guard started else { return false }
        defer {
            for waiter in stepsInFlight.withLock({ $0.removeValue(forKey: linkID) }) ?? [] { waiter.resume() }
        }
        guard let link = try? await pool.read({ db in try LinkStore.link(db, id: linkID) }), let step = link.pendingStep else { return true }
        let outcome: LinkStore.Outcome
        do {
            switch step {
            case .setBilling:
                _ = try await organization.call(Organizations.setBillingAccount, Self.setBillingRequest(link), options: .init(timeout: .seconds(5)))
            case .clearBilling:
                let request = ClearBillingAccountRequest(
                    organizationId: link.organizationID, linkId: link.id,
                    reason: "the AWS Marketplace subscription ended")
                _ = try await organization.call(Organizations.clearBillingAccount, request, options: .init(timeout: .seconds(5)))
            }
            outcome = .done
        } catch {
            if LinkLifecycle.isPermanent(error.code) {
                outcome = .failed(error.message)
            } else {
                let delay = RetryBackoff.delay(afterAttempts: link.attempts, cap: longestRetryDelay)
                outcome = .retry(at: now() + delay, error: "\(error)")
            }
        }
        let at = now()
        do {
            try await pool.write { db in try LinkStore.record(db, outcome, of: step, linkID: linkID, at: at) }
            linksWritten()
        } catch {
            logger.error("cannot record a saga step", metadata: ["link_id": "\(linkID)", "error": "\(error)"])
        }
        logger.info("saga step", metadata: ["link_id": "\(linkID)", "step": "\(step.rawValue)", "outcome": "\(outcome)"])
        return true
    }

    /// Returns once the step of `linkID` running now has ended (at once if none is running).
    private func stepEnded(linkID: String) async {
        await withCheckedContinuation { continuation in
            let waiting = stepsInFlight.withLock { steps -> Bool in
                guard steps[linkID] != nil else { return false }
                steps[linkID]!.append(continuation)
                return true
            }
            if !waiting { continuation.resume() }
        }
    }

    /// The saga as background work: every link whose step is due, including those left by a
    /// crash; woken when a binding or a cancellation is recorded.
    func runner() -> DurableWorkRunner {
        DurableWorkRunner(
            name: "link saga", wake: wake, batchSize: 50, idleWait: .seconds(1),
            due: { [pool, now] in try await pool.read { db in try LinkStore.dueSteps(db, at: now()) } },
            perform: { [self] linkID in await advance(linkID: linkID) },
            now: now, logger: logger)
    }

    /// Links changed outside a saga step (a subscription event): the billing page reads afresh and
    /// the runner looks for due steps now.
    func linksChanged() {
        linksWritten()
        wake.signal()
    }

    private static func setBillingRequest(_ link: LinkStore.Link) -> SetBillingAccountRequest {
        SetBillingAccountRequest(
            organizationId: link.organizationID, provider: .awsMarketplace, awsAccountId: link.offer.awsAccountID, linkId: link.id,
            contract: ContractSummary(
                productCode: link.offer.productCode, offerId: link.offer.licenseArn ?? link.offer.productCode,
                dimensions: link.offer.entitlements, endsAt: link.offer.contractEndsAt),
            linkedBy: link.linkedBy)
    }
}
