// The hospital switcher in the header, a <details> menu: Escape closes it, as it closes any menu, and
// focus goes back to its summary, so a keyboard user is not left inside a list that has gone.
const switcher = document.querySelector("details.switcher");
switcher?.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !switcher.open) return;
  event.preventDefault();
  switcher.open = false;
  switcher.querySelector("summary").focus();
});
