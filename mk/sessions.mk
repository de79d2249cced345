# Sessions: the demos an embedded telemetry user builds on, and suite
# sessions, which runs them against servers that restart under them.
#   demo/telemetry_client  numbered readings, kept until acknowledged
#                          (replay_until_acked), LOGIN first (on_connect),
#                          nothing else before the server's OK (hold_until_ready)
#   demo/telemetry_server  its server: ACK per line, a log that survives
#                          SIGKILL, and a count of lost and duplicated lines
#   demo/mqtt_pub          an MQTT 3.1.1 QoS 1 publisher, tested against
#                          Debian's mosquitto with mosquitto_sub on the far side
# test/demo/sessions_test.sh also sends 10 MB through kacat --keep-sending
# to a server (socat) that has half-closed first.

SESSION_DEMOS = demo/telemetry_client demo/telemetry_server demo/mqtt_pub
DEMOS     += $(SESSION_DEMOS)
CLEAN     += $(SESSION_DEMOS)
SUITES    += sessions
DEPS_PKGS += mosquitto mosquitto-clients socat

demo/telemetry_client: demo/telemetry_client.c demo/demo_os.h ka_client.h $(LIB)
	$(CC) $(KA_CFLAGS) -o $@ demo/telemetry_client.c $(LIB) $(LDFLAGS)

demo/telemetry_server: demo/telemetry_server.c demo/demo_os.h
	$(CC) $(KA_CFLAGS) -o $@ demo/telemetry_server.c $(LDFLAGS)

demo/mqtt_pub: demo/mqtt_pub.c demo/demo_os.h ka_client.h $(LIB)
	$(CC) $(KA_CFLAGS) -o $@ demo/mqtt_pub.c $(LIB) $(LDFLAGS)

suite-sessions: $(SESSION_DEMOS) demo/kacat
	@bash test/demo/sessions_test.sh

.PHONY: suite-sessions
