// The reusable view of one decoded Bolt frame. decodeFrame fills it in place; nothing in it
// owns bytes: every section is an absolute offset into the buffer that was decoded.

export class BoltFrame {
  /** 1 (v1) or 2 (v2). */
  proto = 0;
  /** v2 protocol version (1 or 2); 0 for v1 frames, which have no such byte. */
  ver1 = 0;
  /** TYPE_RESPONSE / TYPE_REQUEST / TYPE_ONEWAY. */
  type = 0;
  cmdcode = 0;
  /** Command version. */
  ver2 = 0;
  /** Unsigned 32-bit correlation id. */
  requestId = 0;
  codec = 0;
  /** v2 switch byte; 0 for v1. */
  switch = 0;
  /** Requests and oneways: int32 milliseconds (-1 = none). 0 for responses. */
  timeout = 0;
  /** Responses: u16 status. 0 for requests. */
  status = 0;
  classLen = 0;
  headerLen = 0;
  contentLen = 0;
  /** Absolute offset of the frame's first byte. */
  frameStart = 0;
  /** Size of the fixed header (20, 22 or 24). */
  fixedLen = 0;
  classStart = 0;
  headerStart = 0;
  contentStart = 0;
  /** End of content = start of the CRC trailer when hasCrc. */
  contentEnd = 0;
  /** v2 frame with ver1 == 2 and switch bit 0: a verified CRC32 follows the content. */
  hasCrc = false;
  /** Total frame length including the CRC trailer. */
  frameLen = 0;
  /** cmdcode == CMD_HEARTBEAT (a heartbeat request when isRequest, its ack otherwise). */
  isHeartbeat = false;
  /** type is TYPE_REQUEST or TYPE_ONEWAY. */
  isRequest = false;
}

/** A fresh frame view; allocate one per connection and reuse it. */
export function createBoltFrame(): BoltFrame {
  return new BoltFrame();
}
