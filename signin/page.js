// Counts the resend button's cooldown down. Without script the button is
// always there and the server refuses a press before the cooldown; with it,
// the button waits and the hint says how long.
(function () {
	"use strict";
	var wait = document.getElementById("resend-wait");
	var button = document.getElementById("resend");
	if (!wait || !button) {
		return;
	}
	var left = parseInt(wait.getAttribute("data-wait"), 10) || 0;
	var text = wait.getAttribute("data-text") || "";
	function tick() {
		if (left <= 0) {
			button.disabled = false;
			wait.textContent = "";
			return;
		}
		button.disabled = true;
		wait.textContent = text.replace("%d", String(left));
		left -= 1;
		window.setTimeout(tick, 1000);
	}
	tick();
})();
