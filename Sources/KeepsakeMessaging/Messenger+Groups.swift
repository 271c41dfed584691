import Foundation
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// Group conversations: membership changes are commits from epoch n to n + 1,
/// signed by the committing installation. The relay orders them: a committer
/// first claims the next epoch on the group's commit topic, and members apply
/// only the commit whose digest holds its epoch's claim, in epoch order. Two
/// members committing at once: the second claim is refused (`epochTaken`), and
/// a commit that does not hold its claim is refused by every member alike.
extension Messenger {
    /// Creates a group with this account and `members`, and tells every member's installations (epoch 0).
    public func createGroup(title: String, members: [AccountID]) async throws -> ConversationID {
        try await exclusive {
            let me = try requireMembership()
            for account in members where AccountIdentity.publicKey(of: account.rawValue) == nil { throw MessagingError.badAccountID(account) }
            let everyone = Array(Set(members + [me.account])).sorted()
            guard everyone.count > 1 else { throw MessagingError.invalidChange("a group needs at least one other account") }
            let id = ConversationID.random()
            let body = CommitBody.with {
                $0.conversationID = Data(id.bytes)
                $0.epoch = 0
                $0.added = everyone.map(\.rawValue)
                $0.committer = me.account.rawValue
                $0.committerInstallation = Data(me.installation.bytes)
                $0.title = title
                $0.members = everyone.map(\.rawValue)
            }
            var created = ConversationCreated()
            created.conversationID = Data(id.bytes)
            created.kind = .group
            created.title = title
            created.members = everyone.map(\.rawValue)
            created.createdBy = me.account.rawValue
            try await deliverCommit(body, to: everyone, logging: [EventDraft(.conversationCreated(created))])
            return id
        }
    }

    /// Adds accounts to a group; returns the new epoch.
    @discardableResult
    public func addMembers(_ accounts: [AccountID], to group: ConversationID) async throws -> UInt64 {
        try await exclusive { try await commit(group, adding: accounts, removing: []) }
    }

    /// Removes accounts from a group (they are told, then no longer receive its messages); returns the new epoch.
    @discardableResult
    public func removeMembers(_ accounts: [AccountID], from group: ConversationID) async throws -> UInt64 {
        try await exclusive { try await commit(group, adding: [], removing: accounts) }
    }

    private func commit(_ group: ConversationID, adding added: [AccountID], removing removed: [AccountID]) async throws -> UInt64 {
        let me = try requireMembership()
        guard let summary = try store.conversation(group), summary.kind == .group else { throw KeepsakeError.unknownConversation(group) }
        let members = try store.members(of: group)
        guard members.contains(me.account) else { throw MessagingError.notAMember(group) }
        guard try store.isWritable(summary) else { throw MessagingError.readOnly(group) }
        for account in added + removed where AccountIdentity.publicKey(of: account.rawValue) == nil { throw MessagingError.badAccountID(account) }
        guard !(added.isEmpty && removed.isEmpty) else { throw MessagingError.invalidChange("the change adds and removes no one") }
        if let present = added.first(where: members.contains) { throw MessagingError.invalidChange("\(present) is already a member") }
        if let absent = removed.first(where: { !members.contains($0) }) { throw MessagingError.invalidChange("\(absent) is not a member") }
        let after = Set(members).union(added).subtracting(removed).sorted()
        guard !after.isEmpty else { throw MessagingError.invalidChange("a group cannot lose every member") }
        let epoch = summary.epoch + 1
        let body = CommitBody.with {
            $0.conversationID = Data(group.bytes)
            $0.epoch = epoch
            $0.added = added.sorted().map(\.rawValue)
            $0.removed = removed.sorted().map(\.rawValue)
            $0.committer = me.account.rawValue
            $0.committerInstallation = Data(me.installation.bytes)
            $0.title = summary.title
            $0.members = after.map(\.rawValue)
        }
        var event = MembershipCommit()
        event.conversationID = Data(group.bytes)
        event.epoch = epoch
        event.added = body.added
        event.removed = body.removed
        event.committer = me.account.rawValue
        try await deliverCommit(body, to: Array(Set(after).union(removed)), logging: [EventDraft(.membershipCommit(event))], claim: true)
        return epoch
    }

    /// Signs a commit, claims its epoch when asked (before anything is logged), then fans it out.
    private func deliverCommit(_ body: CommitBody, to accounts: [AccountID], logging events: [EventDraft], claim: Bool = false) async throws {
        let (_, signing) = try store.signingKey()
        let commit = try Commit.signing(body, with: signing)
        if claim {
            let claimed = EpochClaim(epoch: body.epoch, commitDigest: commit.digest)
            let topic = Topic.commitTopicID(of: Array(body.conversationID))
            guard try await relayCall({ try await $0.claimEpoch(claimed, group: topic) }) else { throw MessagingError.epochTaken(body.epoch) }
        }
        guard let group = ConversationID(bytes: body.conversationID) else { throw MessagingError.invalidChange("bad group ID") }
        _ = try await deliver(Content.with { $0.commit = commit }, in: .group(group), to: accounts, logging: events)
    }

    /// The events a received commit adds, after checking it (signature by the
    /// sending installation, committer a member, the epoch's claim on the relay).
    /// Throws `Deferral` for a commit whose predecessors have not arrived yet.
    func commitEvents(_ signed: Commit, in convo: ConvoID, from sender: KnownInstallation, me: Membership) async throws -> [EventDraft] {
        let body: CommitBody
        do { body = try signed.verified(signingKey: sender.signingKey) } catch {
            throw EnvelopeRejection.conversationMismatch("the commit is not signed by its sender installation")
        }
        guard case let .group(group) = convo, Array(body.conversationID) == group.bytes,
              body.committer == sender.account.rawValue, Array(body.committerInstallation) == sender.id.bytes else {
            throw EnvelopeRejection.conversationMismatch("the commit names another group or committer than its envelope")
        }
        let local = try store.conversation(group)
        if body.epoch == 0 {
            guard local == nil else { return [] }
            guard body.members.contains(sender.account.rawValue), body.members.contains(me.account.rawValue) else { throw EnvelopeRejection.notAMember }
            return [Self.groupCreated(body, startingAt: 0)]
        }
        if let local, local.epoch >= body.epoch {
            guard try await claimedDigest(of: group, epoch: body.epoch) == signed.digest else {
                throw EnvelopeRejection.conversationMismatch("epoch \(body.epoch) belongs to another commit")
            }
            return []
        }
        if let local, local.epoch + 1 < body.epoch { throw Deferral() }
        guard try await claimedDigest(of: group, epoch: body.epoch) == signed.digest else {
            throw EnvelopeRejection.conversationMismatch("the commit does not hold the claim of epoch \(body.epoch)")
        }
        var event = MembershipCommit()
        event.conversationID = Data(group.bytes)
        event.epoch = body.epoch
        event.added = body.added
        event.removed = body.removed
        event.committer = body.committer
        guard local != nil else {
            // Added to a group this store did not know: it starts at this commit.
            guard body.added.contains(me.account.rawValue), body.members.contains(me.account.rawValue) else { throw Deferral() }
            return [Self.groupCreated(body, startingAt: body.epoch)]
        }
        guard try store.members(of: group).contains(sender.account) else { throw EnvelopeRejection.notAMember }
        return [EventDraft(.membershipCommit(event))]
    }

    private static func groupCreated(_ body: CommitBody, startingAt epoch: UInt64) -> EventDraft {
        var created = ConversationCreated()
        created.conversationID = body.conversationID
        created.kind = .group
        created.title = body.title
        created.members = body.members
        created.createdBy = body.committer
        created.epoch = epoch
        return EventDraft(.conversationCreated(created))
    }

    /// The digest holding `epoch` on the group's commit topic, if claimed.
    private func claimedDigest(of group: ConversationID, epoch: UInt64) async throws -> [UInt8]? {
        let claims = try await allItems(of: .commits(group: Topic.commitTopicID(of: group.bytes)), after: 0).items
        return claims.lazy.compactMap { try? parse(CommitClaim.self, $0.data, as: "commit claim") }
            .first { $0.epoch == epoch }.map { Array($0.commitDigest) }
    }
}

/// An envelope that cannot apply yet (its group or an earlier commit has not
/// arrived): kept, and tried again after the rest of the inbox.
struct Deferral: Error {}
