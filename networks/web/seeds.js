// seed -> z as the Python side draws it (latent/seeds.py: NumPy's legacy RandomState(seed).randn(z_dim)):
// MT19937 seeded by init_genrand, doubles of 53 bits from two draws, Gaussians by the polar Box-Muller method
// in pairs (the second of each pair comes first, as NumPy's legacy_gauss returns it).
(function () {
  "use strict";

  function mt19937(seed) {
    const mt = new Uint32Array(624);
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    let index = 624;
    function twist() {
      for (let i = 0; i < 624; i++) {
        const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
        mt[i] = mt[(i + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      index = 0;
    }
    return function next() {                       // one tempered 32-bit draw
      if (index >= 624) twist();
      let y = mt[index++];
      y ^= y >>> 11;
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      y ^= y >>> 18;
      return y >>> 0;
    };
  }

  function seedToZ(seed, zDim) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 4294967295) throw new Error("a seed is 0 to 4294967295");
    const next = mt19937(seed);
    const double = () => ((next() >>> 5) * 67108864.0 + (next() >>> 6)) / 9007199254740992.0;
    const z = new Float32Array(zDim);
    let spare = null;
    for (let i = 0; i < zDim; i++) {
      if (spare !== null) { z[i] = spare; spare = null; continue; }
      let x1, x2, r2;
      do {
        x1 = 2.0 * double() - 1.0;
        x2 = 2.0 * double() - 1.0;
        r2 = x1 * x1 + x2 * x2;
      } while (r2 >= 1.0 || r2 === 0.0);
      const f = Math.sqrt(-2.0 * Math.log(r2) / r2);
      spare = f * x1;
      z[i] = f * x2;
    }
    return z;
  }

  window.seedToZ = seedToZ;
})();
