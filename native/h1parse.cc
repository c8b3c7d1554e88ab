// HTTP/1.1 message heads scanned in C++ for the raw HTTP/1.1 engine (src/http/h1/codec.ts).
//
// h1HeadSetup(io: Int32Array, slab?: ArrayBuffer): the calling thread's exchange area (kept
//   referenced; its layout is NIO in src/http/h1/codec.ts, mirrored by the constants below), and
//   the head slab (src/http/h1/head-slab.ts) that a request head's forwarded lines may be copied
//   into (kSlabAt); called again with the new slab each time the slab is replaced.
// h1HeadParse(arrayBuffer, byteOffset, start, lim): scans the head at buf[start, lim) of the
//   Buffer buf = (arrayBuffer, byteOffset). Returns the offset just past
//   its empty line when the head is complete, valid and of the shapes handled here; 0 otherwise
//   ("not decided here"): an incomplete head, any error, and the rare framing cases (a repeated
//   or listed Content-Length, Transfer-Encoding with Content-Length, two Host lines, a version
//   other than HTTP/1.0 or 1.1, more fields than the area holds ...). The TypeScript parser then
//   parses the same bytes and gives the answer, so this scanner only ever accepts what the
//   TypeScript parser accepts, with the same results (test/unit/h1-native-head.test.ts runs both on
//   the golden vectors, the hostile corpora and random heads).
//
// It builds no strings: it writes offsets, the hashes the codec's interning tables key on, the
// method's index in the codec's METHODS list and the framing facts into io.
#include <cstdint>
#include <cstring>

#include "outrigger.h"

namespace outrigger {
namespace {

// io layout: inputs, results, the forwarded-line runs, the per-field records.
enum : int {
  kFlags = 0,       // in: kIsRequest | kIndexOnly | kIndexToo | kHeadRequest | kConnectRequest | kFields
  kMaxHeaders = 1,  // in
  kMethod = 2,      // index in METHODS, -1 = another token
  kTargetStart = 3,
  kTargetEnd = 4,
  kTargetHash = 5,
  kMinor = 6,
  kStatus = 7,
  kReasonStart = 8,
  kReasonEnd = 9,
  kReasonHash = 10,
  kCount = 11,
  kBodyKind = 12,
  kContentLength = 13,
  kKeepAlive = 14,
  kUpgrade = 15,
  kConnect = 16,
  kExpect = 17,
  kIrregular = 18,
  kRunCount = 19,
  kMethodStart = 20,
  // in: where in the slab a complete indexed request head's forwarded lines and its empty line go
  // (-1: nowhere); in: the end of the slab's room; out: the end of the copy, -1 when not copied.
  kSlabAt = 21,
  kSlabEnd = 22,
  kCopiedEnd = 23,
  kRunsAt = 32,
  kMaxFields = 256,
  kFieldsAt = kRunsAt + 2 * kMaxFields + 8,
  kFieldInts = 7,  // line start, name end, value start, value end, name hash, value hash, upper-case name
  // (+ 8: the layout with the slab slots is refused by the codec of an older build and vice versa)
  kIoLength = kFieldsAt + kFieldInts * kMaxFields + 8,
};

enum : int32_t {
  kIsRequest = 1,
  kIndexOnly = 2,
  kIndexToo = 4,
  kHeadRequest = 8,
  kConnectRequest = 16,
  kFields = 32,
};

// Kinds of the fields the parser acts on (codec.ts Kind).
enum Kind : int { kPlain = 0, kClField, kTransferEncoding, kConnection, kHost, kUpgradeKind, kExpectKind, kHopByHop, kRewritten };

// BodyKind (codec.ts).
enum : int32_t { kBodyNone = 0, kBodyLength = 1, kBodyChunked = 2, kBodyUntilClose = 3 };

constexpr uint8_t CR = 13, LF = 10, SP = 32, HTAB = 9, COLON = 58, COMMA = 44;
constexpr int kMaxLeadingCrlf = 4;
constexpr int kMaxClDigits = 15;
// Content-Length values above this go back to the TypeScript parser (io holds int32).
constexpr int64_t kMaxClHere = 0x7fffffff;

struct Tables {
  uint8_t tchar[256];
  uint8_t field[256];
  uint8_t target[256];
  uint8_t lower[256];
  Tables() {
    const char* extra = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
      lower[c] = static_cast<uint8_t>(c >= 0x41 && c <= 0x5a ? c + 32 : c);
      bool alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
      tchar[c] = alnum || (c != 0 && std::strchr(extra, c) != nullptr) ? 1 : 0;
      field[c] = c == HTAB || (c >= 0x20 && c != 0x7f) ? 1 : 0;
      target[c] = c > 0x20 && c < 0x7f ? 1 : 0;
    }
  }
};
const Tables T;

// The codec's hash step: (h * 31 + c) | 0 on int32.
inline uint32_t Step(uint32_t h, uint8_t c) { return h * 31u + c; }

// buf[s, e) equals the lower-case literal ignoring ASCII case.
inline bool IsCi(const uint8_t* b, int s, int e, const char* lit, int n) {
  if (e - s != n) return false;
  for (int i = 0; i < n; i++)
    if (T.lower[b[s + i]] != static_cast<uint8_t>(lit[i])) return false;
  return true;
}

inline bool Is(const uint8_t* b, int s, int e, const char* lit, int n) {
  return e - s == n && std::memcmp(b + s, lit, n) == 0;
}

// The field names the parser acts on; everything else is kPlain.
Kind NameKind(const uint8_t* b, int s, int e) {
  switch (e - s) {
    case 2:
      return IsCi(b, s, e, "te", 2) ? kRewritten : kPlain;
    case 4:
      return IsCi(b, s, e, "host", 4) ? kHost : kPlain;
    case 6:
      return IsCi(b, s, e, "expect", 6) ? kExpectKind : kPlain;
    case 7:
      if (IsCi(b, s, e, "upgrade", 7)) return kUpgradeKind;
      return IsCi(b, s, e, "trailer", 7) ? kRewritten : kPlain;
    case 10:
      if (IsCi(b, s, e, "connection", 10)) return kConnection;
      return IsCi(b, s, e, "keep-alive", 10) ? kHopByHop : kPlain;
    case 14:
      if (IsCi(b, s, e, "content-length", 14)) return kClField;
      return IsCi(b, s, e, "http2-settings", 14) ? kHopByHop : kPlain;
    case 16:
      return IsCi(b, s, e, "proxy-connection", 16) ? kHopByHop : kPlain;
    case 17:
      return IsCi(b, s, e, "transfer-encoding", 17) ? kTransferEncoding : kPlain;
    default:
      return kPlain;
  }
}

// METHODS in codec.ts, in its order.
int MethodIndex(const uint8_t* b, int s, int e) {
  static const char* const kMethods[] = {"GET", "PUT", "POST", "HEAD", "PATCH", "TRACE", "DELETE", "OPTIONS", "CONNECT"};
  for (int i = 0; i < 9; i++)
    if (Is(b, s, e, kMethods[i], static_cast<int>(std::strlen(kMethods[i])))) return i;
  return -1;
}
constexpr int kConnectMethod = 8;
constexpr int kOptionsMethod = 7;

struct Io {
  int32_t* io = nullptr;
  napi_ref ref = nullptr;
  napi_env env = nullptr;
  uint8_t* slab = nullptr;
  size_t slabLen = 0;
  napi_ref slabRef = nullptr;
};
thread_local Io tio;

// The scan state of one head (codec.ts HeadParser's private framing facts).
struct Head {
  const uint8_t* b;
  int32_t* io;
  bool isRequest, indexOnly, indexing, fields;
  int maxHeaders;
  int64_t clValue = -1;
  bool teSeen = false, teChunked = false, teLastChunked = false, teAnyCoding = false;
  bool connClose = false, connKeepAlive = false, connUpgrade = false, connOther = false;
  bool hasUpgrade = false, expectContinue = false, irregular = false;
  int hostCount = 0;
  int runCount = 0;
};

// Content-Length: one element of 1-15 digits; false for anything else (lists, repeats: the
// TypeScript parser decides those).
bool ContentLength(Head& h, int vs, int ve) {
  if (h.clValue >= 0) return false;
  const uint8_t* b = h.b;
  int p = vs;
  int64_t n = 0;
  while (p < ve && b[p] >= 0x30 && b[p] <= 0x39) n = n * 10 + (b[p++] - 0x30);
  if (p == vs || p - vs > kMaxClDigits || p != ve || n > kMaxClHere) return false;
  h.clValue = n;
  return true;
}

// Transfer-Encoding's codings (codec.ts transferEncodingField); false on "chunked" twice.
bool TransferEncoding(Head& h, int vs, int ve) {
  const uint8_t* b = h.b;
  h.teSeen = true;
  int p = vs;
  while (p < ve) {
    while (p < ve && (b[p] == SP || b[p] == HTAB || b[p] == COMMA)) p++;
    if (p == ve) break;
    int es = p;
    while (p < ve && b[p] != COMMA) p++;
    int ee = p;
    while (ee > es && (b[ee - 1] == SP || b[ee - 1] == HTAB)) ee--;
    h.teAnyCoding = true;
    if (IsCi(b, es, ee, "chunked", 7)) {
      if (h.teChunked) return false;
      h.teChunked = true;
      h.teLastChunked = true;
    } else {
      h.teLastChunked = false;
    }
  }
  return true;
}

void Connection(Head& h, int vs, int ve) {
  const uint8_t* b = h.b;
  int p = vs;
  while (p < ve) {
    while (p < ve && (b[p] == SP || b[p] == HTAB || b[p] == COMMA)) p++;
    int es = p;
    while (p < ve && b[p] != COMMA) p++;
    int ee = p;
    while (ee > es && (b[ee - 1] == SP || b[ee - 1] == HTAB)) ee--;
    int n = ee - es;
    if (n == 5 && IsCi(b, es, ee, "close", 5)) h.connClose = true;
    else if (n == 10 && IsCi(b, es, ee, "keep-alive", 10)) h.connKeepAlive = true;
    else if (n == 7 && IsCi(b, es, ee, "upgrade", 7)) h.connUpgrade = true;
    else if (n > 0) h.connOther = true;
  }
}

// The end of the field-value bytes (HTAB, SP, VCHAR, obs-text) from p: eight bytes at a time
// while none of them is below 0x20 or DEL (a word test; HTAB then goes through the byte steps).
inline int FieldEnd(const uint8_t* b, int p, int lim) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  for (;;) {
    while (lim - p >= 8) {
      uint64_t x;
      std::memcpy(&x, b + p, 8);
      const uint64_t below = (x - 0x20 * kOnes) & ~x & kHigh;  // some byte < 0x20
      const uint64_t y = x ^ (0x7f * kOnes);
      const uint64_t del = (y - kOnes) & ~y & kHigh;  // some byte == 0x7f
      if ((below | del) != 0) break;
      p += 8;
    }
    const int stop = lim - p > 8 ? p + 8 : lim;
    while (p < stop && T.field[b[p]]) p++;
    if (p < stop || p >= lim) return p;
  }
}

// Field lines from p through the empty line: the offset past it, or 0 (not decided here).
int Fields(Head& h, int p, int lim) {
  const uint8_t* b = h.b;
  int32_t* io = h.io;
  int count = 0;
  for (;;) {
    if (p >= lim) return 0;
    const int ls = p;
    uint8_t c = b[p];
    if (c == CR) {
      if (p + 1 >= lim || b[p + 1] != LF) return 0;
      io[kCount] = count;
      return p + 2;
    }
    // field-name (its lower-case hash on the way when the codec builds a map from the fields)
    uint32_t hash = 0;
    bool upper = false;
    if (h.fields) {
      while (T.tchar[c]) {
        uint8_t l = T.lower[c];
        upper |= l != c;
        hash = Step(hash, l);
        if (++p >= lim) return 0;
        c = b[p];
      }
    } else {
      while (T.tchar[c]) {
        if (++p >= lim) return 0;
        c = b[p];
      }
    }
    if (c != COLON || p == ls) return 0;
    const int ne = p++;
    while (p < lim && (b[p] == SP || b[p] == HTAB)) p++;
    const int vs = p;
    p = FieldEnd(b, p, lim);
    if (p + 1 >= lim || b[p] != CR || b[p + 1] != LF) return 0;
    int ve = p;
    while (ve > vs && (b[ve - 1] == SP || b[ve - 1] == HTAB)) ve--;
    p += 2;
    if (++count > h.maxHeaders || count > kMaxFields) return 0;
    const Kind kind = NameKind(b, ls, ne);
    switch (kind) {
      case kClField:
        if (!ContentLength(h, vs, ve)) return 0;
        break;
      case kTransferEncoding:
        if (!TransferEncoding(h, vs, ve)) return 0;
        break;
      case kConnection:
        Connection(h, vs, ve);
        break;
      case kHost:
        h.hostCount++;  // two in a request: refused (the TypeScript parser names it)
        break;
      case kUpgradeKind:
        h.hasUpgrade = true;
        break;
      case kExpectKind:
        if (IsCi(b, vs, ve, "100-continue", 12)) h.expectContinue = true;
        break;
      default:
        break;
    }
    if (h.indexing) {
      if (kind == kRewritten || (kind == kClField && h.isRequest)) {
        h.irregular = true;
      } else if (kind == kPlain || (!h.isRequest && (kind == kClField || kind == kHost || kind == kExpectKind))) {
        int32_t* runs = io + kRunsAt;
        int rc = h.runCount;
        if (rc > 0 && runs[rc - 1] == ls) {
          runs[rc - 1] = p;
        } else {
          runs[rc] = ls;
          runs[rc + 1] = p;
          h.runCount = rc + 2;
        }
      }
    }
    if (h.fields) {
      uint32_t vh = 0;
      for (int i = vs; i < ve; i++) vh = Step(vh, b[i]);
      int32_t* f = io + kFieldsAt + (count - 1) * kFieldInts;
      f[0] = ls;
      f[1] = ne;
      f[2] = vs;
      f[3] = ve;
      f[4] = static_cast<int32_t>(hash);
      f[5] = static_cast<int32_t>(vh);
      f[6] = upper ? 1 : 0;
    }
  }
}

// The version "HTTP/1.0" or "HTTP/1.1" followed by `stop`: the offset of `stop`, or 0.
int Version(const uint8_t* b, int p, int lim, uint8_t stop, int32_t* io) {
  if (lim - p > 8 && std::memcmp(b + p, "HTTP/1.", 7) == 0 && (b[p + 7] == '1' || b[p + 7] == '0') && b[p + 8] == stop) {
    io[kMinor] = b[p + 7] - '0';
    return p + 8;
  }
  return 0;
}

// codec.ts checkTarget: true when the target's form suits the method.
bool TargetForm(const uint8_t* b, int s, int e, int method) {
  const uint8_t c = b[s];
  if (method == kConnectMethod) {
    int colon = -1;
    for (int i = s; i < e; i++) {
      uint8_t x = b[i];
      if (x == '/' || x == '?' || x == '#' || x == '@') return false;
      if (x == COLON) colon = i;
    }
    if (colon <= s || colon == e - 1) return false;
    for (int i = colon + 1; i < e; i++)
      if (b[i] < '0' || b[i] > '9') return false;
    return true;
  }
  if (c == '/') return true;
  if (c == '*' && e - s == 1) return method == kOptionsMethod;
  if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
    int i = s + 1;
    while (i < e) {
      uint8_t x = b[i];
      bool ok = ((x | 0x20) >= 'a' && (x | 0x20) <= 'z') || (x >= '0' && x <= '9') || x == '+' || x == '-' || x == '.';
      if (!ok) break;
      i++;
    }
    if (e - i > 3 && b[i] == COLON && b[i + 1] == '/' && b[i + 2] == '/') return true;
  }
  return false;
}

int Request(Head& h, int start, int lim) {
  const uint8_t* b = h.b;
  int32_t* io = h.io;
  int p = start;
  for (int n = 0; p < lim && b[p] == CR;) {
    if (p + 1 >= lim || b[p + 1] != LF) return 0;
    p += 2;
    if (++n > kMaxLeadingCrlf) return 0;
  }
  const int ms = p;
  while (p < lim && T.tchar[b[p]]) p++;
  if (p >= lim || b[p] != SP || p == ms) return 0;
  // Methods other than the listed ones are tokens the codec slices itself (method -1).
  const int method = MethodIndex(b, ms, p);
  io[kMethod] = method;
  io[kMethodStart] = ms;
  const int ts = ++p;
  uint32_t th = 0;
  while (p < lim && T.target[b[p]]) th = Step(th, b[p++]);
  if (p >= lim || b[p] != SP || p == ts) return 0;
  // The CONNECT check needs the method's name: a token not in the list is never CONNECT.
  if (!TargetForm(b, ts, p, method)) return 0;
  io[kTargetStart] = ts;
  io[kTargetEnd] = p;
  io[kTargetHash] = static_cast<int32_t>(th);
  p = Version(b, p + 1, lim, CR, io);
  if (p == 0 || p + 1 >= lim || b[p + 1] != LF) return 0;
  p = Fields(h, p + 2, lim);
  if (p == 0 || h.hostCount > 1) return 0;
  if (h.indexing && h.connOther) h.irregular = true;
  int32_t body = kBodyNone;
  int64_t length = -1;
  if (h.teSeen) {
    if (io[kMinor] == 0 || h.clValue >= 0 || !h.teAnyCoding || !h.teChunked || !h.teLastChunked) return 0;
    body = kBodyChunked;
  } else if (h.clValue > 0) {
    body = kBodyLength;
    length = h.clValue;
  }
  io[kBodyKind] = body;
  io[kContentLength] = static_cast<int32_t>(length);
  io[kKeepAlive] = (io[kMinor] == 1 ? !h.connClose : h.connKeepAlive && !h.connClose) ? 1 : 0;
  io[kUpgrade] = h.hasUpgrade && h.connUpgrade ? 1 : 0;
  io[kConnect] = method == kConnectMethod ? 1 : 0;
  return p;
}

int Response(Head& h, int start, int lim, int32_t flags) {
  const uint8_t* b = h.b;
  int32_t* io = h.io;
  int p = Version(b, start, lim, SP, io);
  if (p == 0 || lim - p < 5) return 0;
  const int d0 = b[p + 1] - '0', d1 = b[p + 2] - '0', d2 = b[p + 3] - '0';
  if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return 0;
  const int status = d0 * 100 + d1 * 10 + d2;
  io[kStatus] = status;
  p += 4;
  int rs = p, re = p;
  uint32_t rh = 0;
  if (b[p] == SP) {
    rs = ++p;
    while (p < lim && T.field[b[p]]) rh = Step(rh, b[p++]);
    re = p;
    if (p >= lim || b[p] != CR) return 0;
  } else if (b[p] != CR) {
    return 0;
  }
  io[kReasonStart] = rs;
  io[kReasonEnd] = re;
  io[kReasonHash] = static_cast<int32_t>(rh);
  if (p + 1 >= lim || b[p + 1] != LF) return 0;
  p = Fields(h, p + 2, lim);
  if (p == 0) return 0;
  // Transfer-Encoding with Content-Length (the length is dropped): the TypeScript parser's case.
  if (h.teSeen && h.clValue >= 0) return 0;
  bool keepAlive = io[kMinor] == 1 ? !h.connClose : h.connKeepAlive && !h.connClose;
  if (h.indexOnly && h.connOther) h.irregular = true;
  int32_t body;
  int64_t length = -1;
  if (status < 200 || status == 204 || status == 304 || (flags & kHeadRequest) || ((flags & kConnectRequest) && status < 300)) {
    body = kBodyNone;
  } else if (h.teSeen) {
    if (h.teChunked && !h.teLastChunked) return 0;
    if (io[kMinor] == 0) keepAlive = false;
    if (h.teLastChunked) {
      body = kBodyChunked;
    } else {
      body = kBodyUntilClose;
      keepAlive = false;
    }
  } else if (h.clValue >= 0) {
    body = kBodyLength;
    length = h.clValue;
  } else {
    body = kBodyUntilClose;
    keepAlive = false;
  }
  io[kBodyKind] = body;
  io[kContentLength] = static_cast<int32_t>(length);
  io[kKeepAlive] = keepAlive ? 1 : 0;
  io[kUpgrade] = status == 101 ? 1 : 0;
  io[kConnect] = 0;
  return p;
}

// A request head's forwarded lines and its empty line, copied back to back into the slab at
// io[kSlabAt] when they fit before io[kSlabEnd]: the upstream head is then the proxy's lines
// written in front of them (head-slab.ts writeCopiedHead), with no per-byte copy in JavaScript.
void CopyRuns(const uint8_t* b, int32_t* io, int runCount) {
  const int32_t at = io[kSlabAt];
  const int32_t end = io[kSlabEnd];
  if (tio.slab == nullptr || at < 0 || end < at || static_cast<size_t>(end) > tio.slabLen) return;
  const int32_t* runs = io + kRunsAt;
  int64_t n = 2;
  for (int i = 0; i < runCount; i += 2) n += runs[i + 1] - runs[i];
  if (n > end - at) return;
  uint8_t* d = tio.slab + at;
  for (int i = 0; i < runCount; i += 2) {
    std::memcpy(d, b + runs[i], runs[i + 1] - runs[i]);
    d += runs[i + 1] - runs[i];
  }
  d[0] = CR;
  d[1] = LF;
  io[kCopiedEnd] = static_cast<int32_t>(at + n);
}

napi_value Setup(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  size_t len = 0;
  void* data = nullptr;
  if (argc < 1 || !TypedArg(env, argv[0], napi_int32_array, &data, &len) || len < static_cast<size_t>(kIoLength)) {
    napi_throw_type_error(env, nullptr, "h1HeadSetup(io): io must be an Int32Array of at least the layout's length");
    return nullptr;
  }
  // One area per thread, referenced for the thread's life (its backing store never moves).
  if (tio.ref != nullptr && tio.env == env) napi_delete_reference(env, tio.ref);
  if (tio.slabRef != nullptr && tio.env == env) napi_delete_reference(env, tio.slabRef);
  tio.slabRef = nullptr;
  tio.slab = nullptr;
  tio.slabLen = 0;
  napi_create_reference(env, argv[0], 1, &tio.ref);
  tio.env = env;
  tio.io = static_cast<int32_t*>(data);
  // The slab, referenced until the next setup (it too never moves).
  void* sdata = nullptr;
  size_t slen = 0;
  bool isAb = false;
  if (argc >= 2 && napi_is_arraybuffer(env, argv[1], &isAb) == napi_ok && isAb &&
      napi_get_arraybuffer_info(env, argv[1], &sdata, &slen) == napi_ok && slen > 0) {
    napi_create_reference(env, argv[1], 1, &tio.slabRef);
    tio.slab = static_cast<uint8_t*>(sdata);
    tio.slabLen = slen;
  }
  napi_value n;
  napi_create_int32(env, kIoLength, &n);
  return n;
}

// Scans the head at data[base + start, base + lim) (len: the ArrayBuffer's length): the offset
// past it, or 0 (bad arguments are not decided here either: the TypeScript parser then runs).
int32_t ParseAt(void* data, size_t len, int32_t base, int32_t start, int32_t lim) {
  int32_t r = 0;
  int32_t* io = tio.io;
  if (io != nullptr && base >= 0 && start >= 0 && start < lim && static_cast<size_t>(base) + static_cast<size_t>(lim) <= len) {
    const int32_t flags = io[kFlags];
    Head h;
    h.b = static_cast<const uint8_t*>(data) + base;
    h.io = io;
    h.isRequest = (flags & kIsRequest) != 0;
    h.indexOnly = (flags & kIndexOnly) != 0;
    h.indexing = (flags & (kIndexOnly | kIndexToo)) != 0;
    h.fields = (flags & kFields) != 0;
    h.maxHeaders = io[kMaxHeaders];
    r = h.isRequest ? Request(h, start, lim) : Response(h, start, lim, flags);
    io[kCopiedEnd] = -1;
    if (r > 0) {
      io[kExpect] = h.expectContinue ? 1 : 0;
      io[kIrregular] = h.irregular ? 1 : 0;
      io[kRunCount] = h.runCount;
      if (h.isRequest && h.indexing) CopyRuns(h.b, io, h.runCount);
    } else {
      r = 0;
    }
  }
  return r;
}

// h1HeadParse's raw callback (runs twice per proxied request: ExportRaw, outrigger.h): the usual
// call, an ArrayBuffer and three int32 numbers; anything else goes to Parse.
void ParseRaw(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (info.Length() != 4 || !info[0]->IsArrayBuffer() || !info[1]->IsInt32() || !info[2]->IsInt32() || !info[3]->IsInt32()) {
    RawSlow(info);
    return;
  }
  v8::Local<v8::ArrayBuffer> ab = info[0].As<v8::ArrayBuffer>();
  info.GetReturnValue().Set(ParseAt(ab->Data(), ab->ByteLength(), info[1].As<v8::Int32>()->Value(), info[2].As<v8::Int32>()->Value(),
                                    info[3].As<v8::Int32>()->Value()));
}

// h1HeadParse's N-API twin: four arguments, no wrapper objects. The buffer comes as its
// ArrayBuffer and byte offset (napi_get_typedarray_info costs ~250 instructions a call, the
// ArrayBuffer's data pointer a fifth of that).
napi_value Parse(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  size_t len = 0;
  void* data = nullptr;
  int32_t base = 0, start = 0, lim = 0;
  int32_t r = 0;
  if (argc == 4 && napi_get_arraybuffer_info(env, argv[0], &data, &len) == napi_ok && napi_get_value_int32(env, argv[1], &base) == napi_ok &&
      napi_get_value_int32(env, argv[2], &start) == napi_ok && napi_get_value_int32(env, argv[3], &lim) == napi_ok) {
    r = ParseAt(data, len, base, start, lim);
  }
  napi_value result;
  napi_create_int32(env, r, &result);
  return result;
}

}  // namespace

void RegisterH1Parse(Napi::Env env, Napi::Object exports) {
  ExportPlain(env, exports, "h1HeadSetup", Setup);
  ExportRaw(env, exports, "h1HeadParse", ParseRaw, Parse);
}

}  // namespace outrigger
