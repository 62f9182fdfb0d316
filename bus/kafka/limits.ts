// Sizes, deadlines and intervals of the Kafka adapter, each with its unit.

/** Largest payload of one partition's record batch in a produce request, in bytes: below the broker's default 1 MB record-batch limit. */
export const MAX_BATCH_BYTES = 900 * 1024;
/** Largest payload of one produce request over all partitions, in bytes. */
export const MAX_REQUEST_BYTES = 8 * 1024 * 1024;
/** Largest record batch a topic ztwatch creates accepts (`max.message.bytes`), in bytes. */
export const TOPIC_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Bytes fetched per partition and per request. */
export const FETCH_PARTITION_MAX_BYTES = 4 * 1024 * 1024;
/** Bytes fetched per request over all partitions. */
export const FETCH_MAX_BYTES = 16 * 1024 * 1024;
/** Longest fetch long-poll while nothing waits to be handed, in milliseconds (bounds close()). */
export const FETCH_IDLE_WAIT_MS = 500;
/** Longest backoff after a failed fetch or a rejected batch, in milliseconds. */
export const MAX_RETRY_BACKOFF_MS = 10_000;
/** Tries of one offset commit; after the last, the partition is read again from its committed offset. */
export const COMMIT_ATTEMPTS = 3;
/** Deadline of one client call (join, commit, offsets, metadata), in milliseconds. */
export const CALL_DEADLINE_MS = 30_000;
/** Deadline of one produce request, retries included, in milliseconds. */
export const SEND_DEADLINE_MS = 45_000;
/** Interval of the consumer-lag refresh from the partitions' end offsets, in milliseconds. */
export const LAG_REFRESH_MS = 2_000;
/** Record-batch attribute bit of transaction markers, which carry no messages. */
export const CONTROL_BATCH = 0x20;
