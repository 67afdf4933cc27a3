"""HBA versus CGA: what a host pays to create its address set and to prove a locator set.

Thesis 6.4.1.2.8 (after [Bagnulo2005c]) claims HBA address creation is about four orders of
magnitude cheaper than the CGA-based technique, and session establishment about two orders
cheaper.  This measures our implementation, on this machine:

- creation: an HBA set over n prefixes (random pseudo-key, one modifier search, n Hash1)
  versus a CGA-based set (an RSA key pair, then one CGA per prefix: n modifier searches);
- establishment crypto: what the receiver of a locator list does - HBA membership checks of
  the n locators versus CGA verification plus one RSA signature verification (and what the
  sender does: nothing for HBA, one RSA signature for CGA).

Run: ``python benchmarks/hba_vs_cga.py [--sec 0] [--rsa-bits 1024] [--repeat 20]``
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from agents.shim import cga, hba  # noqa: E402
from agents.shim import messages as m  # noqa: E402
from agents.shim.identity import signed_bytes  # noqa: E402


def timed(fn, repeat: int) -> float:
    """Median wall time of ``fn`` in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def prefixes(n: int) -> list[bytes]:
    return [ipaddress.IPv6Address(f"2001:db8:{i + 1:x}:1::").packed[:8] for i in range(n)]


def cga_set(pfx: list[bytes], sec: int, bits: int) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = cga.public_key_der(key.public_key())
    for p in pfx:
        cga.generate_cga(p, der, sec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sec", type=int, default=0)
    ap.add_argument("--rsa-bits", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    print(f"HBA vs CGA, Sec={args.sec}, RSA-{args.rsa_bits}, median of {args.repeat} runs\n")
    print("1. creating the address set (thesis claim: HBA ~10^4 x cheaper)")
    print(f"   {'prefixes':>8}  {'HBA set':>12}  {'CGA set (keygen + n CGAs)':>26}  {'CGA/HBA':>9}")
    for n in (2, 3, 4):
        pfx = prefixes(n)
        t_hba = timed(lambda: hba.generate_hba_set(pfx, args.sec), args.repeat)
        t_cga = timed(lambda: cga_set(pfx, args.sec, args.rsa_bits), max(3, args.repeat // 4))
        print(f"   {n:>8}  {t_hba * 1e6:>10.1f}us  {t_cga * 1e3:>24.2f}ms  {t_cga / t_hba:>8.0f}x")

    print("\n2. crypto of one context establishment, per locator list (thesis claim: HBA ~10^2 x cheaper)")
    print(f"   {'locators':>8}  {'HBA check':>12}  {'CGA verify+RSA verify':>22}  {'ratio':>7}  {'+ RSA sign (sender)':>20}  {'ratio':>7}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=args.rsa_bits)
    der = cga.public_key_der(key.public_key())
    for n in (2, 3, 4):
        hset = hba.generate_hba_set(prefixes(n), args.sec)
        params = hset.params[0]
        check_hba = lambda: [hba.verify_hba(a, params) for a in hset.addresses]  # noqa: E731
        address, cparams = cga.generate_cga(prefixes(1)[0], der, args.sec)
        locators = hset.addresses
        methods = (m.VERIFY_CGA,) * n
        message = signed_bytes(1, locators, methods)
        signature = cga.sign(key, m.SHIM6_CGA_TAG, message)
        check_cga = lambda: cga.verify_signed(address, cparams, m.SHIM6_CGA_TAG, message, signature)  # noqa: E731
        t_h = timed(check_hba, args.repeat * 5)
        t_c = timed(check_cga, args.repeat * 5)
        t_s = timed(lambda: cga.sign(key, m.SHIM6_CGA_TAG, message), args.repeat)
        print(f"   {n:>8}  {t_h * 1e6:>10.1f}us  {t_c * 1e6:>20.1f}us  {t_c / t_h:>6.1f}x  "
              f"{(t_c + t_s) * 1e6:>18.1f}us  {(t_c + t_s) / t_h:>6.1f}x")
    print("\nNotes: HBA creation is dominated by Python overhead (a few SHA-1s); CGA creation by RSA key")
    print("generation, whose cost varies from run to run. With Sec>0 both pay the same modifier search")
    print("(~2^(16*Sec) SHA-1s) once per set for HBA but once per address for CGA.")


if __name__ == "__main__":
    main()
