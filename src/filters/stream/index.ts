/** Every stream filter kind Outrigger ships; importing this registers them (src/api/stream-filter.ts). */
import './payload_limit/payload-limit';
import './mirror/mirror';
