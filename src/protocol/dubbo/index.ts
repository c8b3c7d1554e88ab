// Dubbo 2.x codec: zero-copy framing, 64-bit id rewrite in place, lazy hessian2 routing keys,
// heartbeats and error responses. The XCodec glue registers it as "dubbo".

export * from './constants';
export { DubboFrame, decodeDubboFrame, detectDubbo, dubboFrameLength, writeDubboId, encodeDubboHeartbeat, encodeDubboHeartbeatAck, encodeDubboError } from './frame';
export { readString, readInt, skipValue, readStringMap, countJvmArgs, encodeString, SkipState, hs, hi, H_TRUNCATED, H_BAD_TAG, H_LIMIT } from './hessian';
export { readLeadingStrings, readAttachments } from './body';
export { DubboXFrame, dubboCodec } from './xcodec';
