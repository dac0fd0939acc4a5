"""The built module loads into Debian's nginx and stays quiet when unused."""


def test_module_loads_into_debian_nginx(nginx, module):
    ng = nginx(module=True, workers=2,
               server='location / { return 200 "ok\\n"; }')
    assert ng.config_text().startswith("load_module %s;\n" % module)
    r = ng.check_config()
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == \
        "nginx: configuration file %s test is successful" % ng.conf_path
    ng.start()
    assert ng.get("/")[0::2] == (200, b"ok\n")
    ng.reload()
    assert ng.get("/")[0::2] == (200, b"ok\n")
