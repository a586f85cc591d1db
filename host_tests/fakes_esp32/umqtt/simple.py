# A fake umqtt.simple on the shared fake broker (fake_mqtt.FakeBroker in BROKER).
from fake_mqtt import FakeBroker, FakeMqttClient

BROKER = FakeBroker()
MADE = []


class MQTTClient(FakeMqttClient):
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None, ssl_params=None):  # fmt: skip
        super().__init__(BROKER, client_id, server, port, user, password, keepalive, ssl)
        MADE.append(self)
