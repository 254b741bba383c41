# forkd in a container. Built on Debian bookworm with the packages of
# scripts/deps and the same commands as scripts/run; run on bookworm-slim with
# only the shared libraries forkd links, as an unprivileged user, configured by
# /etc/forkd/forkd.conf: conf/forkd.conf with listen = 0.0.0.0:8080.
#
#   docker build -t forkd .
#   docker run --rm -p 8080:8080 forkd
#   docker stop -t 35 CONTAINER    # SIGTERM: graceful; in-flight requests finish
#
# forkd logs to stderr (docker logs). Another configuration:
#   docker run -v $PWD/my.conf:/etc/forkd/forkd.conf:ro -p 8080:8080 forkd
# (keep its listen on 0.0.0.0:8080 or change the port mapping and the
# HEALTHCHECK below).
#
# Your own app: build it in the sdk stage (the headers, forkd.pc and a
# compiler), then give the module to the runtime image:
#   docker build --target sdk -t forkd-sdk .
#   docker run --rm -v $PWD:/app -w /app forkd-sdk \
#       sh -c 'meson setup build && ninja -C build'
#   docker run --rm -p 8080:8080 -v $PWD/build/notes.so:/app/app.so:ro \
#       -v $PWD/forkd.conf:/etc/forkd/forkd.conf:ro forkd \
#       -c /etc/forkd/forkd.conf --app /app/app.so
# Without --app the image serves the example app.

FROM debian:bookworm AS build
WORKDIR /src
# The package list alone first, so this layer is reused while only sources change.
COPY scripts/deps scripts/deps
RUN bash scripts/deps install build
COPY . .
# scripts/run's build, then `meson install` into /out: the binary, the
# example app, libforkd, forkd.h and forkd.pc, the configuration, the unit.
RUN meson setup build-release -Dbuildtype=release && ninja -C build-release
RUN meson install -C build-release --no-rebuild --destdir /out
# The container's configuration is the default one, listening on every
# address; forkd -t proves the edited file still loads.
RUN sed 's/^listen = 127\.0\.0\.1:8080$/listen = 0.0.0.0:8080/' \
		/out/usr/local/etc/forkd/forkd.conf >/out/forkd.conf && \
	grep -qx 'listen = 0.0.0.0:8080' /out/forkd.conf && \
	/out/usr/local/bin/forkd -t -c /out/forkd.conf

# The stage to build an app in: a compiler, meson, the libraries' headers,
# and forkd's header and forkd.pc, installed as on any machine.
FROM debian:bookworm AS sdk
COPY scripts/deps /tmp/deps
RUN bash /tmp/deps install build && rm -rf /tmp/deps
COPY --from=build /out/usr/local /usr/local
WORKDIR /app

FROM debian:bookworm-slim
# Only the runtime libraries (scripts/deps' runtime group); the package lists
# are dropped again to keep the image small.
COPY scripts/deps /tmp/deps
RUN bash /tmp/deps install runtime && rm -rf /var/lib/apt/lists/* /tmp/deps
RUN useradd --system --user-group --no-create-home --home-dir /nonexistent \
	--shell /usr/sbin/nologin forkd
COPY --from=build /out/usr/local/bin/forkd /usr/local/bin/forkd
COPY --from=build /out/usr/local/lib /usr/local/lib
COPY --from=build /out/usr/local/share/forkd /usr/local/share/forkd
COPY --from=build /out/forkd.conf /etc/forkd/forkd.conf
USER forkd
EXPOSE 8080
# forkd's graceful stop; give `docker stop` more than [server]
# graceful_timeout (30 s) before it kills, e.g. -t 35.
STOPSIGNAL SIGTERM
# GET /health through bash's /dev/tcp: the slim image has no curl, and none is
# needed to read one status line.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
	CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1.1 200 '"]
ENTRYPOINT ["/usr/local/bin/forkd"]
CMD ["-c", "/etc/forkd/forkd.conf"]
