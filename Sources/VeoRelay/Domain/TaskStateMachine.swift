/// Every change of a task's state the relay makes, and what makes it: the task's state machine as one
/// table. `RelayTask` checks each of its moves against it (in debug builds, so every test run does),
/// and a test holds the protocol model (`protocol/relay.pml`) to the rows marked `modelled`.
public enum TaskStateMachine {
    public struct Transition: Sendable, Hashable {
        public var from: TaskState
        public var to: TaskState
        /// Part of the model checked by spin; the rest (cancels, stored videos, resubmission) leave no
        /// paid answer at stake that the model's properties are about.
        public var modelled: Bool
        public var step: String
    }

    public static let all: [Transition] = [
        Transition(from: .queued, to: .submitting, modelled: true, step: "the submitter marks it, before the paid request leaves"),
        Transition(from: .queued, to: .failed, modelled: false, step: "its deadline passed before it was submitted"),
        Transition(from: .queued, to: .cancelled, modelled: false, step: "its client cancelled it"),
        Transition(from: .submitting, to: .queued, modelled: true,
                   step: "refused before any job was created, or its mark not confirmed: nothing was sent"),
        Transition(from: .submitting, to: .running, modelled: true, step: "the upstream's answer is written"),
        Transition(from: .submitting, to: .failed, modelled: true,
                   step: "rejected, its answer lost, or its owner gone (outcome unknown)"),
        Transition(from: .running, to: .succeeded, modelled: true, step: "a poll finds it done"),
        Transition(from: .running, to: .failed, modelled: true, step: "a poll finds it failed, lost or unreadable, or past its deadline"),
        Transition(from: .running, to: .cancelled, modelled: false, step: "a poll finds the upstream cancelled it"),
        Transition(from: .succeeded, to: .storing, modelled: false, step: "done upstream, its videos to be stored first"),
        Transition(from: .storing, to: .succeeded, modelled: false, step: "its videos are stored"),
        Transition(from: .failed, to: .queued, modelled: false, step: "an operator resubmits it (a new, paid generation)"),
    ]

    static let allowed = Set(all.map { [$0.from, $0.to] })

    public static func allows(_ from: TaskState, _ to: TaskState) -> Bool {
        allowed.contains([from, to])
    }
}
