"""testing: public test doubles for edgekit's own tests and users' — small real ONNX models
(`models`), simulated latency runs with known spreads (`latencies`), fake sensors and vendor
tools in the kernel's and vendors' formats (`sensors`), a real sshd on loopback (`ssh`), a real
PostgreSQL in a temp dir (`pg`), shaped network links (`net`) and a transport that slows a
device down (`transport`).

May import any edgekit part. Product code never imports it (import-linter contract).
"""
