/**
 * CRC-32 (ISO-HDLC, the zlib one) with `combine`: the EIF's CRC runs header-first, but the
 * header (offsets, sizes) and the last ramdisk's section header are only known after the
 * ramdisk has been streamed. Combining CRCs of independently computed pieces lets the writer
 * stream each byte once and still produce the header-first CRC (zlib's crc32_combine method:
 * appending n zero bytes is a linear operator over GF(2), applied by repeated squaring).
 */
import zlib from 'node:zlib';

export function crc32(data: Uint8Array, previous = 0): number {
  return zlib.crc32(data, previous);
}

const POLY = 0xedb88320;

function matrixTimes(matrix: Uint32Array, vector: number): number {
  let sum = 0;
  let bits = vector;
  for (const row of matrix) {
    if (bits === 0) break;
    if (bits & 1) sum ^= row;
    bits >>>= 1;
  }
  return sum >>> 0;
}

function matrixSquare(square: Uint32Array, matrix: Uint32Array): void {
  matrix.forEach((row, n) => {
    square[n] = matrixTimes(matrix, row);
  });
}

/** CRC of A‖B from crc(A), crc(B) and B's length. */
export function crc32Combine(crcA: number, crcB: number, lengthB: bigint): number {
  if (lengthB <= 0n) return crcA >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = POLY;
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  matrixSquare(even, odd); // two zero bits
  matrixSquare(odd, even); // four zero bits
  let a = crcA >>> 0;
  let len = lengthB;
  do {
    matrixSquare(even, odd);
    if (len & 1n) a = matrixTimes(even, a);
    len >>= 1n;
    if (len === 0n) break;
    matrixSquare(odd, even);
    if (len & 1n) a = matrixTimes(odd, a);
    len >>= 1n;
  } while (len !== 0n);
  return (a ^ crcB) >>> 0;
}
