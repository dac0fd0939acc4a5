"""Integration-test helpers for ngx_dashstream (see t/README.md)."""
