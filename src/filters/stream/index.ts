/** Every stream filter kind Outrigger ships; importing this registers them (src/api/stream-filter.ts). */
import './payload_limit/payload-limit';
import './fault_tolerance/fault-tolerance';
import './rbac/rbac';
import './local_ratelimit/local-ratelimit';
import './flowcontrol/flowcontrol';
import './fault/fault';
import './ip_access/ip-access';
import './mirror/mirror';
import './dubbo_stream/rpc-metrics';
