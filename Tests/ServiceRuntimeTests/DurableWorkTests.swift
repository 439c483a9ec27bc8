import Foundation
import Logging
import ServiceLifecycle
import ServiceRuntime
import Synchronization
import TestSupport
import Testing

/// The one loop for durable background work: it does what is due in batches, sleeps until woken
/// (not polling), retries a failed read, and stops at graceful shutdown.
struct DurableWorkTests {
    struct ReadFailed: Error {}

    @Test func doesWhatIsDueSleepsUntilWokenAndStopsAtShutdown() async throws {
        let queue = Mutex<[Int]>([1, 2, 3])
        let done = Mutex<[Int]>([])
        let reads = Mutex(0)
        let runner = DurableWorkRunner(
            name: "test work", batchSize: 2, idleWait: .seconds(60),
            due: { () async throws -> [Int] in
                // The first read fails: the runner logs it and tries again a second later.
                if reads.withLock({ count in
                    count += 1
                    return count == 1
                }) {
                    throw ReadFailed()
                }
                return queue.withLock { queue in
                    let batch = Array(queue.prefix(2))
                    queue.removeFirst(batch.count)
                    return batch
                }
            },
            perform: { item in done.withLock { $0.append(item) } },
            logger: Logger(label: "durable-work-test"))
        let group = ServiceGroup(configuration: .init(services: [.init(service: runner)], logger: Logger(label: "durable-work-test")))
        let running = Task { try await group.run() }

        // Generous bounds: this pass shares the cooperative pool with many other suites.
        #expect(try await eventually(timeout: .seconds(20)) { done.withLock { $0 } == [1, 2, 3] }, "batches of 2 until nothing is due")
        try await Task.sleep(for: .milliseconds(200))
        let idleReads = reads.withLock { $0 }
        queue.withLock { $0 = [4] }
        runner.wake.signal()
        // The idle wait is a minute: only the signal explains a start within seconds.
        #expect(try await eventually(timeout: .seconds(20)) { done.withLock { $0 } == [1, 2, 3, 4] })
        #expect(idleReads <= 4, "it slept while idle instead of polling (\(idleReads) reads)")

        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test func backoffDoublesFromOneSecondUpToItsCap() {
        #expect((0...8).map { RetryBackoff.delay(afterAttempts: $0, cap: 60) } == [1, 2, 4, 8, 16, 32, 60, 60, 60])
        #expect(RetryBackoff.delay(afterAttempts: -1, cap: 60) == 1)
    }
}
