// Progress of an upload on the import forms (form.upload), as progressive enhancement: without
// this script (or without XMLHttpRequest) the forms post as usual. With it, a form holding a
// chosen file is sent by XMLHttpRequest, its <progress> and status line show how much of the
// upload has gone, and the page the server answers with (the import's outcome or its problems)
// replaces this one. No inline script: the pages' Content-Security-Policy forbids it.
(function () {
  "use strict";
  if (!window.XMLHttpRequest || !window.FormData) {
    return;
  }

  function chosen(form) {
    return Array.prototype.some.call(form.querySelectorAll("input[type=file]"), function (input) {
      return input.files && input.files.length > 0;
    });
  }

  function enhance(form) {
    var bar = form.querySelector("progress.upload-progress");
    var status = form.querySelector(".upload-status");
    var button = form.querySelector("button[type=submit]");
    if (!bar || !status) {
      return;
    }
    form.addEventListener("submit", function (event) {
      if (!chosen(form)) {
        return; // nothing to upload: the browser sends it as usual
      }
      event.preventDefault();
      var said = -1;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) {
          return;
        }
        var percent = Math.floor((100 * e.loaded) / e.total);
        bar.value = percent;
        if (percent >= said + 10 || percent === 100) { // the status is read out: not every 1 %
          said = percent;
          status.textContent = "Uploading: " + percent + "% sent";
        }
      });
      xhr.upload.addEventListener("load", function () {
        status.textContent = "Uploaded; checking the file (nothing is stored if it has a problem)";
      });
      xhr.addEventListener("load", function () {
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        bar.hidden = true;
        button.disabled = false;
        status.textContent = "The upload was interrupted; nothing was imported. Please try again.";
      });
      bar.value = 0;
      bar.hidden = false;
      button.disabled = true;
      status.textContent = "Uploading: 0% sent";
      xhr.send(new FormData(form));
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.upload"), enhance);
})();
