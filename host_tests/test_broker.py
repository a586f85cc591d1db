# The local brokers `make demo` and the tests use honour topic filters: a retained message goes
# to a subscription that matches it, once, and to nothing else. amqtt 0.12.1 alone sends every
# client the retained messages matching anybody's filters (host/broker.py fixes that).

import pytest

from broker_fixtures import Subscriber, amqtt_broker, broker, mosquitto_broker, publish_retained  # noqa: F401
from host.broker import AmqttBroker, MosquittoBroker, local_broker

STATE = "kmp2mqtt/n/state"


def test_a_retained_message_reaches_only_matching_subscriptions(broker):
    with Subscriber(broker, ["kmp2mqtt/#"]) as other:  # somebody's filter that matches it
        publish_retained(broker, STATE, b'{"heat_energy":1.5}')
        other.wait_for(STATE)
        with Subscriber(broker, ["nothing/here", "other/x"]) as stranger:
            with Subscriber(broker, ["kmp2mqtt/+/state", "kmp2mqtt/n/#"]) as twice:
                twice.wait_for(STATE)
                stranger.assert_silent(STATE, 1.0)
                assert stranger.messages == []
                # one retained copy per matching subscription (MQTT 3.1.1 allows one per
                # overlapping filter; never one per filter of other clients)
                assert 1 <= len(twice.on(STATE)) <= 2
                assert all(m.retain for m in twice.on(STATE))


def test_the_demo_prefers_mosquitto_when_installed():
    expected = MosquittoBroker if MosquittoBroker.available() else AmqttBroker
    assert type(local_broker()) is expected


def test_mosquitto_that_cannot_start_says_why(tmp_path):
    # a mosquitto that refuses its config (as one that cannot bind does): its own words come
    # back in one error, and its private folder is gone
    exe = tmp_path / "mosquitto"
    exe.write_text("#!/bin/sh\necho 'Error: Address already in use' >&2\nexit 1\n")
    exe.chmod(0o755)
    b = MosquittoBroker(exe=str(exe))
    with pytest.raises(RuntimeError, match="mosquitto did not start: Error: Address already"):
        b.start()
    assert b._dir is None
