// The consumer-group partition assigner: each member gets partitions of the topics it subscribed to.
import type { ClusterMetadata, ExtendedGroupProtocolSubscription, GroupAssignment, GroupPartitionsAssignments } from '@platformatic/kafka';

/**
 * Round-robin over the members that subscribed to each topic. The client's default assigner hands
 * every member partitions of every topic in the group; ztwatch members of one group may subscribe to
 * different topics (the sink reads events and dead letters with one member each).
 */
export function assignBySubscription(
  _current: string,
  members: Map<string, ExtendedGroupProtocolSubscription>,
  _topics: Set<string>,
  metadata: ClusterMetadata,
): GroupPartitionsAssignments[] {
  const result = new Map<string, GroupPartitionsAssignments>();
  for (const memberId of [...members.keys()].sort()) result.set(memberId, { memberId, assignments: new Map<string, GroupAssignment>() });
  const subscribers = new Map<string, string[]>();
  for (const [memberId, subscription] of members) {
    for (const topic of subscription.topics ?? []) {
      const list = subscribers.get(topic) ?? [];
      list.push(memberId);
      subscribers.set(topic, list);
    }
  }
  for (const [topic, memberIds] of subscribers) {
    const partitionsCount = metadata.topics.get(topic)?.partitionsCount ?? 0;
    memberIds.sort();
    for (let partition = 0; partition < partitionsCount; partition++) {
      const member = result.get(memberIds[partition % memberIds.length] as string);
      if (!member) continue;
      const assignment = member.assignments.get(topic) ?? { topic, partitions: [] };
      assignment.partitions.push(partition);
      member.assignments.set(topic, assignment);
    }
  }
  return [...result.values()];
}
