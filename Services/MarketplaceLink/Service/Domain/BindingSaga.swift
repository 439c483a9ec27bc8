import AWSMarketplace
import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import Logging
import RPCCore
import ServiceRuntime
import Synchronization

/// The binding saga: BindOrganization records the intent (BINDING) durably, then organization's
/// SetBillingAccount is retried until it answers for good; after a cancellation,
/// ClearBillingAccount the same way. `LinkLifecycle` rules each outcome.
final class BindingSaga: Sendable {
    private let storage: any LinkStorage
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
    /// How long a worker owns a step it took: more than a step takes (organization is given 5 s),
    /// and how long a step taken by a replica that died waits for another.
    private let stepLease: TimeInterval
    /// Links whose saga step is running in this process now, each with whoever waits for that step to end.
    private let stepsInFlight = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    init(
        storage: any LinkStorage, organization: ConnectClient, authenticator: AccessTokenAuthenticator,
        linksWritten: @escaping @Sendable () -> Void,
        longestRetryDelay: TimeInterval = 60, stepLease: TimeInterval = 15, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.storage = storage
        self.stepLease = stepLease
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
        _ = try ClaimRules.usable(try await storage.registration(claimHash: claimHash), at: now())
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
        let linkID: String
        switch try await storage.recordBinding(
            claimHash: claimHash, organizationID: organizationID, userID: claims.subject, at: at,
            usable: { registration throws(MarketplaceLinkError) in try ClaimRules.usable(registration, at: at) })
        {
        case .recorded(let recorded): linkID = recorded
        case .accountAlreadyLinked: throw MarketplaceLinkError.accountAlreadyLinked
        case .organizationAlreadyLinked: throw MarketplaceLinkError.organizationAlreadyLinked
        }
        linksWritten()
        logger.info("binding recorded", metadata: ["link_id": "\(linkID)", "organization_id": "\(organizationID)"])
        // The first attempt is made now, so the answer is usually ACTIVE; if a runner (here or on
        // another replica) took the link first, wait for its attempt instead, for a while.
        let deadline = ContinuousClock.now + .seconds(10)
        attempts: while true {
            switch await advance(linkID: linkID) {
            case .ended: break attempts
            case .runningHere: await stepEnded(linkID: linkID)
            case .runningElsewhere:
                guard ContinuousClock.now < deadline else { break attempts }
                try? await Task.sleep(for: .milliseconds(25))
            }
        }
        wake.signal()
        guard let link = try await storage.link(id: linkID) else { throw MarketplaceLinkError.notFound }
        return link
    }

    /// One saga step for a link that owes organization one: SET_BILLING after a bind (success makes
    /// a BINDING link ACTIVE; a permanent refusal makes it FAILED, which frees the account and the
    /// organization for another binding), CLEAR_BILLING after a cancellation. Anything else is
    /// retried later with backoff. One step per link at a time, in this process and across
    /// replicas (the step's lease), so a clear never overtakes a set; while another step of the
    /// link is running, does nothing and says where.
    @discardableResult
    func advance(linkID: String) async -> StepAttempt {
        let started = stepsInFlight.withLock { steps -> Bool in
            guard steps[linkID] == nil else { return false }
            steps[linkID] = []
            return true
        }
        guard started else { return .runningHere }
        defer {
            for waiter in stepsInFlight.withLock({ $0.removeValue(forKey: linkID) }) ?? [] { waiter.resume() }
        }
        let leasedAt = now()
        let leased: LinkStore.Link?
        do {
            leased = try await storage.leaseStep(linkID: linkID, at: leasedAt, until: leasedAt + stepLease)
        } catch {
            logger.error("cannot take a saga step", metadata: ["link_id": "\(linkID)", "error": "\(error)"])
            return .ended
        }
        guard let link = leased, let step = link.pendingStep else {
            // Nothing owed any more, or another replica holds the step.
            let current = try? await storage.link(id: linkID)
            return current?.pendingStep == nil ? .ended : .runningElsewhere
        }
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
            try await storage.record(outcome, of: step, linkID: linkID, at: at)
            linksWritten()
        } catch {
            logger.error("cannot record a saga step", metadata: ["link_id": "\(linkID)", "error": "\(error)"])
        }
        logger.info("saga step", metadata: ["link_id": "\(linkID)", "step": "\(step.rawValue)", "outcome": "\(outcome)"])
        return .ended
    }

    /// What asking for a link's step came to.
    enum StepAttempt: Equatable {
        /// The step ran (or nothing is owed).
        case ended
        /// A step of the link is running in this process.
        case runningHere
        /// Another replica holds the step's lease.
        case runningElsewhere
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
            due: { [storage, now] in try await storage.dueSteps(at: now()) },
            perform: { [self] due in
                await BackgroundSpan.run("link saga step", linkedTo: [due.traceParent]) { span in
                    span.attributes["link.id"] = due.linkID
                    _ = await advance(linkID: due.linkID)
                }
            },
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
