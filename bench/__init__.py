"""relayhub benchmark (SPEC §9): `make bench` / `make bench-quick`; see bench/README.md."""
