"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.crc32 = crc32;
/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial), used as the refresh-token checksum. It is not a
 * security measure: it only lets typos and garbage be rejected before any I/O. Implemented here to
 * keep the domain dependency-free; table built once at load.
 */
const TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        t[n] = c >>> 0;
    }
    return t;
})();
/** CRC-32 of the bytes (or of the UTF-8 encoding of a string), as an unsigned 32-bit integer. */
function crc32(input) {
    const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++)
        c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}
