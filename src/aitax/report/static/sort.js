// Sortable tables: a click on a column header sorts its table, and a second click reverses it.
// Sort keys are the raw values from the JSON block "aitax-sort-keys", one array of
// column keys per row, so formatted cell text is never parsed back into numbers.
(function () {
  "use strict";

  var source = document.getElementById("aitax-sort-keys");
  if (!source) {
    return;
  }
  var keysByTable = JSON.parse(source.textContent);

  function compareKeys(left, right) {
    // Missing values sort last in both directions, because the caller flips only real values.
    if (left === null && right === null) { return 0; }
    if (left === null) { return Infinity; }
    if (right === null) { return -Infinity; }
    if (typeof left === "number" && typeof right === "number") { return left - right; }
    return String(left).localeCompare(String(right), undefined, { numeric: true });
  }

  function firstDirection(keys, column) {
    // Numbers start largest first, as a profiler reader expects, and text starts A to Z.
    for (var index = 0; index < keys.length; index += 1) {
      var value = keys[index][column];
      if (value !== null) {
        return typeof value === "number" ? "descending" : "ascending";
      }
    }
    return "ascending";
  }

  function sortTable(table, keys, header, column) {
    var current = header.getAttribute("aria-sort");
    var direction = current === null || current === "none"
      ? firstDirection(keys, column)
      : (current === "ascending" ? "descending" : "ascending");
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);

    rows.sort(function (a, b) {
      var left = keys[Number(a.dataset.row)][column];
      var right = keys[Number(b.dataset.row)][column];
      var order = compareKeys(left, right);
      if (!isFinite(order)) { return order > 0 ? 1 : -1; }
      return sign * order || Number(a.dataset.row) - Number(b.dataset.row);
    });
    rows.forEach(function (row) { body.appendChild(row); });

    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", direction);
  }

  function makeSortable(table) {
    var keys = keysByTable[table.dataset.sortable];
    if (!keys || !table.tHead || !table.tBodies.length) {
      return;
    }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort-button";
      while (header.firstChild) {
        button.appendChild(header.firstChild);
      }
      header.appendChild(button);
      button.addEventListener("click", function () {
        sortTable(table, keys, header, column);
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"), makeSortable);
}());
