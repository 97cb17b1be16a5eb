// strftime as Python's `datetime.now().strftime(fmt)` gives it on Linux (glibc) in the C locale,
// whatever the machine's locale: chat templates (Llama-3.2, gpt-oss, granite) print today's date
// with `strftime_now("%d %b %Y")`, and the model was trained on English month names.
//
// Worked example, 2026-12-01 18:29:48.5 local time (a Tuesday):
//   '%d %b %Y'      → '01 Dec 2026'        '%B %d, %Y' → 'December 01, 2026'
//   '%-d %b'        → '1 Dec'               '%e'        → ' 1'
//   '%c'            → 'Tue Dec  1 18:29:48 2026'
//   '%j %U %W %V'   → '335 48 48 49'        '%f'        → '500000'
// %z and %Z are empty (the datetime is naive, as transformers' is); unknown codes stay as written.

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

function pad(n: number, width: number, flag: string, fill = '0'): string {
  if (flag === '-') return String(n);
  const c = flag === '_' ? ' ' : flag === '0' ? '0' : fill;
  const s = String(Math.abs(n));
  return (n < 0 ? '-' : '') + s.padStart(width, c);
}

/** Day of the year, 1-based: 1 Jan → 1, 1 Dec 2026 → 335. */
function dayOfYear(d: Date): number {
  const start = Date.UTC(d.getFullYear(), 0, 1);
  return Math.round((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - start) / 86_400_000) + 1;
}

/** ISO 8601 week-numbering year and week: weeks start Monday, week 1 holds the year's first Thursday. */
function isoWeek(d: Date): { year: number; week: number } {
  const day = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
  const weekday = day.getUTCDay() || 7; // Monday 1 .. Sunday 7
  day.setUTCDate(day.getUTCDate() + 4 - weekday); // the Thursday of this week decides the year
  const year = day.getUTCFullYear();
  const week = Math.ceil(((day.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7);
  return { year, week };
}

/** Week of the year, weeks starting on `firstDay` (0 Sunday: %U, 1 Monday: %W); days before the first: week 0. */
function weekOfYear(d: Date, firstDay: number): number {
  const yday = dayOfYear(d) - 1;
  const wday = (d.getDay() - firstDay + 7) % 7;
  return Math.floor((yday + 7 - wday) / 7);
}

export function strftime(date: Date, format: string): string {
  return format.replace(/%([-_0^#]?)([a-zA-Z%+])/g, (whole, flag: string, code: string) => {
    const h = date.getHours();
    const text = (s: string) => (flag === '^' ? s.toUpperCase() : s);
    switch (code) {
      case 'a':
        return text(DAYS[date.getDay()].slice(0, 3));
      case 'A':
        return text(DAYS[date.getDay()]);
      case 'b':
      case 'h':
        return text(MONTHS[date.getMonth()].slice(0, 3));
      case 'B':
        return text(MONTHS[date.getMonth()]);
      case 'c':
        return text(strftime(date, '%a %b %e %H:%M:%S %Y'));
      case 'C':
        return pad(Math.floor(date.getFullYear() / 100), 2, flag);
      case 'd':
        return pad(date.getDate(), 2, flag);
      case 'D':
        return strftime(date, '%m/%d/%y');
      case 'e':
        return pad(date.getDate(), 2, flag, ' ');
      case 'f':
        return pad(date.getMilliseconds() * 1000, 6, flag);
      case 'F':
        return strftime(date, '%Y-%m-%d');
      case 'g':
        return pad(isoWeek(date).year % 100, 2, flag);
      case 'G':
        return String(isoWeek(date).year);
      case 'H':
        return pad(h, 2, flag);
      case 'I':
        return pad(h % 12 || 12, 2, flag);
      case 'j':
        return pad(dayOfYear(date), 3, flag);
      case 'k':
        return pad(h, 2, flag, ' ');
      case 'l':
        return pad(h % 12 || 12, 2, flag, ' ');
      case 'm':
        return pad(date.getMonth() + 1, 2, flag);
      case 'M':
        return pad(date.getMinutes(), 2, flag);
      case 'n':
        return '\n';
      case 'p':
        return h < 12 ? 'AM' : 'PM';
      case 'P':
        return h < 12 ? 'am' : 'pm';
      case 'r':
        return strftime(date, '%I:%M:%S %p');
      case 'R':
        return strftime(date, '%H:%M');
      case 's':
        return String(Math.floor(date.getTime() / 1000));
      case 'S':
        return pad(date.getSeconds(), 2, flag);
      case 't':
        return '\t';
      case 'T':
        return strftime(date, '%H:%M:%S');
      case 'u':
        return String(date.getDay() || 7);
      case 'U':
        return pad(weekOfYear(date, 0), 2, flag);
      case 'V':
        return pad(isoWeek(date).week, 2, flag);
      case 'w':
        return String(date.getDay());
      case 'W':
        return pad(weekOfYear(date, 1), 2, flag);
      case 'x':
        return strftime(date, '%m/%d/%y');
      case 'X':
        return strftime(date, '%H:%M:%S');
      case 'y':
        return pad(date.getFullYear() % 100, 2, flag);
      case 'Y':
        return String(date.getFullYear());
      case 'z':
      case 'Z':
        return '';
      case '%':
        return '%';
      default:
        return whole;
    }
  });
}
